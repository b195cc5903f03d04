import { strict as assert } from "node:assert";
import { doctor, formatDoctorReport } from "../../lib/backend/mod.ts";
import { runDoctorCli } from "../../lib/cli/doctor.ts";

Deno.test("doctor: the report has runtime, tfjs, backends, adapter details and advice", async () => {
  const r = await doctor({ backend: "cpu" });
  assert.equal(r.runtime.deno, Deno.version.deno);
  assert.equal(r.runtime.os, Deno.build.os);
  assert.equal(r.runtime.arch, Deno.build.arch);
  assert.ok(r.runtime.cpus >= 1);
  assert.equal(r.tfjs, "4.22.0");
  for (const b of ["cpu", "wasm", "webgpu"]) assert.ok(r.backendsAvailable.includes(b), b);
  assert.equal(r.backend, "cpu");
  assert.ok(Array.isArray(r.advice));
  if (r.adapter) {
    assert.equal(typeof r.adapter.name, "string");
    assert.equal(typeof r.adapter.isFallbackAdapter, "boolean");
    assert.ok(Array.isArray(r.adapter.features));
    assert.ok(r.adapter.limits.maxBufferSize > 0, "maxBufferSize reported");
    assert.ok(r.adapter.limits.maxStorageBufferBindingSize > 0, "maxStorageBufferBindingSize reported");
    // A software adapter must come with advice; a hardware one needs none about drivers.
    if (r.adapter.isFallbackAdapter) assert.ok(r.advice.length > 0);
  } else {
    assert.ok(r.advice.some((a) => a.includes("libvulkan1") || a.includes("driver")), r.advice.join("\n"));
  }
  const text = formatDoctorReport(r);
  for (const label of ["deno", "tfjs", "backend", "adapter"]) {
    assert.match(text, new RegExp(`\\n  ${label}\\s`));
  }
  if (r.adapter) assert.match(text, /maxStorageBufferBindingSize/);
});

Deno.test("doctor CLI: --json round-trips, unknown flags and bad backends are rejected", async () => {
  const logs: string[] = [];
  const errors: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (s: string) => logs.push(s);
  console.error = (s: string) => errors.push(s);
  try {
    assert.equal(await runDoctorCli(["--json", "--backend", "cpu"]), 0);
    assert.equal(JSON.parse(logs[0]).backend, "cpu");
    assert.equal(await runDoctorCli(["--nope"]), 2);
    assert.match(errors[0], /unknown option '--nope'/);
    assert.equal(await runDoctorCli(["--backend", "tpu"]), 2);
    assert.match(errors[1], /--backend must be one of/);
    assert.equal(await runDoctorCli(["--help"]), 0);
    assert.match(logs[1], /^Usage: deno task doctor/);
  } finally {
    console.log = log;
    console.error = error;
  }
});
