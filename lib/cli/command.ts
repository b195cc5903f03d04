/**
 * The exit-code convention shared by the command-line entry points: a usage error prints the message and
 * the usage and exits 2, `--help` prints the usage and exits 0, a failure while running prints one line
 * naming the command and exits 1.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { didYouMean } from "../options.ts";

/** A bad command line (unknown flag, missing or malformed value): exit 2 with the usage. */
export class UsageError extends Error {}

/**
 * `parseArgs` with the conventions every command shares: `--T -1` reads like `--T=-1` (a negative number
 * after a string flag is its value, not a flag), and an unknown flag gets a did-you-mean. Errors are
 * {@linkcode UsageError}s.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFlags } from "./command.ts";
 * const options = { T: { type: "string" } } as const;
 * assert.equal(parseFlags({ args: ["--T", "-1"], options }).values.T, "-1");
 * assert.equal(parseFlags({ args: ["--T=-1"], options }).values.T, "-1");
 * assert.throws(() => parseFlags({ args: ["--t", "3"], options }), /unknown option '--t' \(did you mean --T\?\)/);
 * ```
 */
export function parseFlags<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  const options = config.options ?? {};
  const args = [...(config.args ?? [])];
  for (let i = 0; i < args.length - 1; i++) {
    const m = /^--([^=]+)$/.exec(args[i]);
    if (m && options[m[1]]?.type === "string" && /^-\d|^-\.\d|^-Infinity$/.test(args[i + 1])) {
      args.splice(i, 2, `${args[i]}=${args[i + 1]}`);
    }
  }
  try {
    return parseArgs({ strict: true, ...config, args } as T);
  } catch (e) {
    const msg = (e as Error).message.split("\n")[0];
    const unknown = /Unknown option '(-{1,2}[^']+)'/.exec(msg);
    if (unknown) {
      const flags = Object.keys(options).map((k) => `--${k}`);
      throw new UsageError(
        `unknown option '${unknown[1]}'${didYouMean(unknown[1], flags)}; allowed: ${flags.join(", ")}`,
      );
    }
    throw new UsageError(msg.replace(/\. To specify an option argument starting with a dash.*$/, ""));
  }
}

/** What {@linkcode runCommand} needs to know about one command. */
export interface CommandSpec<A> {
  /** Prefix for error lines, e.g. `train`. */
  name: string;
  /** Full usage text. */
  usage: string;
  /** Parses argv: the arguments, `null` for `--help`, or throws on a usage error. */
  parse(argv: string[]): A | null;
  /** Runs the command; resolves to its exit code. */
  run(args: A): Promise<number>;
}

/**
 * Parses `argv` and runs the command, mapping usage errors, help and failures to exit codes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runCommand } from "./command.ts";
 * const code = await runCommand(["--help"], {
 *   name: "hello",
 *   usage: "Usage: hello [--help]",
 *   parse: (argv) => (argv.includes("--help") ? null : {}),
 *   run: () => Promise.resolve(0),
 * });
 * assert.equal(code, 0); // after printing the usage
 * ```
 */
export async function runCommand<A>(argv: string[], spec: CommandSpec<A>): Promise<number> {
  let args: A | null;
  try {
    args = spec.parse(argv);
  } catch (e) {
    console.error(`${spec.name}: ${(e as Error).message}\n\n${spec.usage}`);
    return 2;
  }
  if (args === null) {
    console.log(spec.usage);
    return 0;
  }
  try {
    return await spec.run(args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`${spec.name}: ${e.message}\n\n${spec.usage}`);
      return 2;
    }
    console.error(`${spec.name}: ${(e as Error).message}`);
    return 1;
  }
}
