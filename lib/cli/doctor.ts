/**
 * `deno task doctor`: prints what this machine offers Coherence Lab (runtime, tfjs backends, WebGPU
 * adapter, features, limits) and what to install when no GPU adapter is found.
 *
 * ```sh
 * deno task doctor            # readable report
 * deno task doctor --json     # machine-readable
 * deno task doctor --backend webgpu
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { doctor, formatDoctorReport } from "../backend/doctor.ts";
import type { BackendName } from "../backend/backend.ts";

const USAGE = `Usage: deno task doctor [--json] [--backend auto|webgpu|wasm|cpu]

Reports the Deno runtime, tfjs version and backends, the WebGPU adapter (name, fallback or not,
features, limits) and what to install when no adapter is found.

  --json            print the report as JSON
  --backend NAME    backend to select (default auto: webgpu on a hardware adapter, else wasm, else cpu)
  -h, --help        show this help`;

/**
 * Runs the doctor command with `args`; returns the exit code.
 *
 * @example
 * ```ts
 * import { runDoctorCli } from "./doctor.ts";
 * const code = await runDoctorCli(["--backend", "cpu", "--json"]);
 * ```
 */
export async function runDoctorCli(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        json: { type: "boolean", default: false },
        backend: { type: "string", default: "auto" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`doctor: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const backend = values.backend as string;
  if (!["auto", "webgpu", "wasm", "cpu"].includes(backend)) {
    console.error(`doctor: --backend must be one of auto, webgpu, wasm, cpu (got '${backend}')`);
    return 2;
  }
  try {
    const report = await doctor({ backend: backend as BackendName | "auto" });
    console.log(values.json ? JSON.stringify(report, null, 2) : formatDoctorReport(report));
    return 0;
  } catch (e) {
    console.error(`doctor: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await runDoctorCli(Deno.args));
