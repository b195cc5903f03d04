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
import { parseFlags, runCommand } from "./command.ts";

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
export function runDoctorCli(args: string[]): Promise<number> {
  return runCommand(args, {
    name: "doctor",
    usage: USAGE,
    parse: (argv) => {
      const { values } = parseFlags({
        args: argv,
        options: {
          json: { type: "boolean", default: false },
          backend: { type: "string", default: "auto" },
          help: { type: "boolean", short: "h", default: false },
        },
        strict: true,
        allowPositionals: false,
      });
      if (values.help) return null;
      if (!["auto", "webgpu", "wasm", "cpu"].includes(values.backend)) {
        throw new Error(`--backend must be one of auto, webgpu, wasm, cpu (got '${values.backend}')`);
      }
      return { json: values.json, backend: values.backend as BackendName | "auto" };
    },
    run: async ({ json, backend }) => {
      const report = await doctor({ backend });
      console.log(json ? JSON.stringify(report, null, 2) : formatDoctorReport(report));
      return 0;
    },
  });
}

if (import.meta.main) Deno.exit(await runDoctorCli(Deno.args));
