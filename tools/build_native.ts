/**
 * Compiles lib/backend/native_kernels.c (the packed-weight GEMM of the wasm backend) for this machine, with
 * `cc -O3 -march=native` (or `$CC`), into lib/backend/libcoherence_native.so (.dylib on macOS). The library
 * is stamped with a hash of its source, so a build left over from an older checkout is refused at load
 * time rather than used. The file is written atomically (compiled to a temporary name, then renamed).
 *
 * ```sh
 * deno task build-native                 # build next to the source (where initBackend looks)
 * deno task build-native --out /tmp/x.so # build elsewhere (pass the path as initBackend's nativeKernels)
 * deno task build-native --if-possible   # no compiler: say so and exit 0 (a failed build still fails)
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { defaultNativeKernelsPath, sourceHash } from "../lib/backend/native_kernels.ts";

const SOURCE = new URL("../lib/backend/native_kernels.c", import.meta.url);

/** No C compiler could be started (as opposed to a build that failed). */
export class NoCompilerError extends Error {}

/** The compiler command: `$CC` when set, else `cc`. */
function compiler(): string {
  return Deno.env.get("CC") || "cc";
}

/**
 * Builds the library at `out` (default: next to the source); returns its path. Throws with the
 * compiler's message when the build fails, or how to install a compiler when none runs.
 */
export async function buildNativeKernels(out = defaultNativeKernelsPath()!): Promise<string> {
  const text = await Deno.readTextFile(SOURCE);
  const hash = sourceHash(text);
  const tmp = `${out}.${Deno.pid}.tmp`;
  const args = [
    "-O3",
    "-march=native",
    "-ffp-contract=fast",
    "-fPIC",
    "-shared",
    `-DCL_SOURCE_HASH=${hash}u`,
    "-o",
    tmp,
    decodeURIComponent(SOURCE.pathname),
  ];
  let result: Deno.CommandOutput;
  try {
    result = await new Deno.Command(compiler(), { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new NoCompilerError(
        `build-native: no C compiler ('${compiler()}' not found). Install one (Debian/Ubuntu: apt-get ` +
          `install gcc libc6-dev; macOS: xcode-select --install) or set CC`,
      );
    }
    throw e;
  }
  if (!result.success) {
    await Deno.remove(tmp).catch(() => {});
    const msg = new TextDecoder().decode(result.stderr).trim();
    throw new Error(`build-native: ${compiler()} ${args.join(" ")} failed:\n${msg}`);
  }
  await Deno.rename(tmp, out);
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { out: { type: "string" }, "if-possible": { type: "boolean", default: false } },
  });
  try {
    const path = await buildNativeKernels(values.out ?? defaultNativeKernelsPath()!);
    console.log(`built ${path}`);
  } catch (e) {
    if (values["if-possible"] && e instanceof NoCompilerError) {
      console.log(`native GEMM not built: ${e instanceof Error ? e.message : e}`);
    } else {
      console.error(e instanceof Error ? e.message : e);
      Deno.exit(1);
    }
  }
}
