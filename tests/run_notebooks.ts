/**
 * Executes notebooks headlessly with Jupyter's nbclient (the library nbconvert --execute uses) and the
 * Deno kernel, and reports the first failing cell of each (index, error name, message, traceback). Executed copies go to a temp folder;
 * the committed notebooks are never modified.
 *
 * ```sh
 * deno task notebooks                         # every notebooks/*.ipynb at COHERENCE_SCALE=ci
 * deno task notebooks notebooks/00_getting_started.ipynb --scale full --out out/notebooks
 * deno task notebooks --write notebooks/12_recync_token_level.ipynb   # execute and commit with outputs
 * ```
 *
 * `--write` is the one way to commit a notebook with outputs: it runs the notebook at the scale its first
 * code cell names (`Committed outputs: COHERENCE_SCALE=ci`, default ci), then writes it back with its
 * outputs, a cell id on every cell, and `metadata.coherence.code_sha256`, a hash of its code cells. The
 * test suite checks that hash, so outputs can never silently belong to older code.
 *
 * Each notebook runs with its own folder as working directory (notebooks import `../mod.ts`), with
 * `NO_COLOR=1` (no ANSI codes in outputs) and `COHERENCE_SCALE` (default "ci"), which the first cell of
 * every notebook reads to size its work.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createHash } from "node:crypto";
import { writeTextAtomic } from "../lib/io/atomic.ts";

/** What `--write` stores in `metadata.coherence`. */
export interface NotebookStamp {
  /** sha256 of the code cells' sources, see {@linkcode notebookCodeHash}. */
  code_sha256: string;
  /** The COHERENCE_SCALE the outputs were produced at. */
  scale: string;
  /** The Deno version that produced them. */
  deno: string;
}

const cellSource = (c: IpynbCell) => (Array.isArray(c.source) ? c.source.join("") : c.source);

/** sha256 (hex) of a notebook's code cells, in order; markdown and outputs do not count. */
export function notebookCodeHash(ipynb: { cells: IpynbCell[] }): string {
  const h = createHash("sha256");
  for (const c of ipynb.cells) {
    if (c.cell_type === "code") h.update(cellSource(c).replace(/\s+$/, "") + "\u0000");
  }
  return h.digest("hex") as string;
}

/** The scale the first code cell names for committed outputs (`Committed outputs: COHERENCE_SCALE=ci`). */
export function stampScale(ipynb: { cells: IpynbCell[] }): string {
  const first = ipynb.cells.find((c) => c.cell_type === "code");
  return /Committed outputs: COHERENCE_SCALE=(\w+)/.exec(first ? cellSource(first) : "")?.[1] ?? "ci";
}

/** The one command that restamps `notebook` (what a stale-hash failure tells you to run). */
export function restampCommand(notebook: string): string {
  return `deno task notebooks --write ${notebook}`;
}

/**
 * Writes the executed copy back over `target` with a cell id on every cell and the stamp in its metadata
 * (indent 1, as Jupyter writes notebooks).
 */
export async function writeStamped(
  executedPath: string,
  target: string,
  scale: string,
): Promise<NotebookStamp> {
  const nb = JSON.parse(await Deno.readTextFile(executedPath));
  nb.nbformat = 4;
  nb.nbformat_minor = Math.max(nb.nbformat_minor ?? 0, 5);
  const seen = new Set<string>();
  nb.cells.forEach((c: IpynbCell & { id?: string }, i: number) => {
    let id = typeof c.id === "string" && /^[\w-]{1,64}$/.test(c.id) ? c.id : "";
    if (!id || seen.has(id)) {
      id = `cell-${i}-${createHash("sha256").update(cellSource(c)).digest("hex").slice(0, 8)}`;
    }
    seen.add(id);
    c.id = id;
  });
  const stamp: NotebookStamp = { code_sha256: notebookCodeHash(nb), scale, deno: Deno.version.deno };
  nb.metadata = { ...nb.metadata, coherence: stamp };
  await writeTextAtomic(target, JSON.stringify(nb, null, 1) + "\n");
  return stamp;
}

/** Options for {@linkcode runNotebook}. */
export interface RunNotebookOptions {
  /** Folder for the executed copy (default: a fresh temp folder). */
  outDir?: string;
  /** Seconds each cell may run (default 600). */
  cellTimeoutSec?: number;
  /** COHERENCE_SCALE for the kernel (default: the current value, else "ci"). */
  scale?: string;
  /** Extra environment for the kernel. */
  env?: Record<string, string>;
}

/** The first error found in an executed notebook. */
export interface NotebookCellError {
  /** 0-based index among all cells (markdown included), as in the .ipynb file. */
  cellIndex: number;
  /** 1-based index among code cells, as a reader counts them. */
  codeCellNumber: number;
  /** Error class, e.g. "TypeError", or "CellTimeoutError" / "NbconvertError". */
  ename: string;
  /** Error message. */
  evalue: string;
  /** Traceback lines, ANSI codes removed. */
  traceback: string[];
  /** First lines of the cell's source. */
  source: string;
}

/** The outcome of one notebook. */
export interface NotebookRunResult {
  /** The notebook that ran. */
  notebook: string;
  /** True when every cell ran without error. */
  ok: boolean;
  /** Where the executed copy was written (when the driver got that far). */
  executedPath?: string;
  /** The first cell error, when not ok. */
  error?: NotebookCellError;
  /** Wall-clock seconds. */
  seconds: number;
}

/** Whether notebooks can run here, and if not, why. */
export interface JupyterStatus {
  /** A Python with nbclient and the Deno kernelspec are installed. */
  available: boolean;
  /** What is missing and how to install it, when not available. */
  reason?: string;
}

async function output(
  cmd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: "null" }).output();
    const dec = new TextDecoder();
    return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
  } catch (e) {
    return { code: -1, stdout: "", stderr: (e as Error).message };
  }
}

const APT_HINT = "Debian: apt-get install jupyter-core jupyter-client python3-ipykernel python3-nbclient " +
  "python3-nbformat jupyter-nbconvert (or run .ci/run)";

/**
 * Python interpreters to try, in order: $COHERENCE_PYTHON, the one on PATH, Debian's. A pyenv or venv
 * python on PATH often lacks the Debian-packaged nbclient, so each is probed.
 */
function pythonCandidates(): string[] {
  const env = Deno.env.get("COHERENCE_PYTHON");
  return [...(env ? [env] : []), "python3", "/usr/bin/python3"];
}

let pythonFound: string | undefined;

/**
 * Checks for a Python with nbclient + nbformat (trying `pythons` in order) and for the `deno` kernelspec.
 *
 * @example
 * ```ts
 * import { jupyterStatus } from "./run_notebooks.ts";
 * const s = await jupyterStatus();
 * if (!s.available) console.warn(s.reason);
 * ```
 */
export async function jupyterStatus(pythons: string[] = pythonCandidates()): Promise<JupyterStatus> {
  const probe = "import json, nbclient, nbformat\n" +
    "from jupyter_client.kernelspec import KernelSpecManager\n" +
    "print(json.dumps(sorted(KernelSpecManager().find_kernel_specs())))";
  const tried: string[] = [];
  for (const py of pythons) {
    const r = await output(py, ["-c", probe]);
    if (r.code !== 0) {
      tried.push(`${py}: ${r.code === -1 ? "not found" : r.stderr.trim().split("\n").at(-1)}`);
      continue;
    }
    const specs: string[] = JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "[]");
    if (!specs.includes("deno")) {
      return { available: false, reason: `the Deno kernel is not registered (run: deno jupyter --install)` };
    }
    pythonFound = py;
    return { available: true };
  }
  return { available: false, reason: `no Python with nbclient found (${tried.join("; ")}); ${APT_HINT}` };
}

/**
 * The nbclient driver (Python): starts the Deno kernel in the notebook's folder, waits until IOPub
 * delivers messages (ZeroMQ drops what is published before the subscription is live), runs code cells
 * in order, picks up outputs the Deno 2.9 kernel publishes after a cell's idle status (seen: the first
 * cell's execute_result arriving after idle), stops at the first error (the kernel's execute_reply
 * status decides, so an error is caught even if its output message were late), and writes the executed
 * copy atomically. Prints one JSON line with the outcome.
 */
const DRIVER = `
import json, os, sys, time
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
src, out, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])
nb = nbformat.read(src, as_version=4)
client = NotebookClient(nb, kernel_name="deno", timeout=timeout, startup_timeout=120,
                        resources={"metadata": {"path": os.path.dirname(src)}})
result = {"ok": True}
LATE = ("execute_result", "display_data", "update_display_data", "stream", "error", "clear_output")
def drain_late_outputs(cell, index):
    # The Deno kernel sometimes publishes a cell's execute_result or stream output just after its
    # "idle" status; nbclient stops listening at idle and would drop it. Collect what arrives before
    # the next cell starts (quiet for 150 ms).
    while True:
        try:
            msg = run_sync(client.kc.get_iopub_msg)(timeout=0.15)
        except Exception:
            return
        if msg["msg_type"] in LATE and msg["parent_header"].get("msg_type") == "execute_request":
            try:
                client.process_message(msg, cell, index)
            except Exception:
                pass
try:
    with client.setup_kernel():
        deadline = time.time() + 60
        live = False
        while not live and time.time() < deadline:
            client.kc.kernel_info()
            try:
                run_sync(client.kc.get_iopub_msg)(timeout=0.5)
                live = True
            except Exception:
                pass
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
                drain_late_outputs(cell, index)
            except CellExecutionError as e:
                drain_late_outputs(cell, index)
                result = {"ok": False, "cell": index, "ename": e.ename, "evalue": e.evalue,
                          "traceback": str(e.traceback).splitlines()[-40:]}
                break
            except CellTimeoutError as e:
                result = {"ok": False, "cell": index, "ename": "CellTimeoutError",
                          "evalue": f"cell ran longer than {timeout}s", "traceback": []}
                break
except DeadKernelError as e:
    result = {"ok": False, "cell": -1, "ename": "DeadKernelError", "evalue": str(e), "traceback": []}
tmp = out + ".tmp"
nbformat.write(nb, tmp)
os.replace(tmp, out)
print("@@RESULT@@" + json.dumps(result))
`;

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/** The parts of a notebook cell (nbformat 4) that the error report reads. */
export interface IpynbCell {
  /** "code", "markdown" or "raw". */
  cell_type: string;
  /** Source text, whole or as lines. */
  source: string | string[];
  /** Cell metadata; the `raises-exception` tag marks cells expected to fail. */
  metadata?: { tags?: string[] };
  /** Outputs of an executed code cell. */
  outputs?: { output_type: string; ename?: string; evalue?: string; traceback?: string[] }[];
}

/** The first error output of an executed notebook's JSON, skipping cells tagged `raises-exception`. */
export function firstCellError(ipynb: { cells: IpynbCell[] }): NotebookCellError | undefined {
  let code = 0;
  for (const [i, cell] of ipynb.cells.entries()) {
    if (cell.cell_type !== "code") continue;
    code++;
    if (cell.metadata?.tags?.includes("raises-exception")) continue;
    const err = cell.outputs?.find((o) => o.output_type === "error");
    if (err) {
      const source = cellSource(cell);
      return {
        cellIndex: i,
        codeCellNumber: code,
        ename: err.ename ?? "Error",
        evalue: (err.evalue ?? "").replace(ANSI, ""),
        traceback: (err.traceback ?? []).map((l) => l.replace(ANSI, "")),
        source: source.split("\n").slice(0, 6).join("\n"),
      };
    }
  }
  return undefined;
}

/**
 * Executes one notebook with nbclient + the Deno kernel, in the notebook's folder; stops at the first
 * cell error.
 *
 * @example
 * ```ts
 * import { runNotebook } from "./run_notebooks.ts";
 * const r = await runNotebook("notebooks/00_getting_started.ipynb", { cellTimeoutSec: 300 });
 * if (!r.ok) console.error(r.error);
 * ```
 */
export async function runNotebook(
  path: string,
  options: RunNotebookOptions = {},
): Promise<NotebookRunResult> {
  const t0 = performance.now();
  const abs = await Deno.realPath(path);
  const dir = abs.slice(0, abs.lastIndexOf("/"));
  const name = abs.slice(abs.lastIndexOf("/") + 1).replace(/\.ipynb$/, "");
  const outDir = options.outDir ?? await Deno.makeTempDir({ prefix: "coherence-notebooks-" });
  await Deno.mkdir(outDir, { recursive: true });
  const outAbs = await Deno.realPath(outDir);
  if (outAbs === dir) throw new Error(`runNotebook: outDir must differ from the notebook folder (${dir})`);
  const executedPath = `${outAbs}/${name}.ipynb`;
  const timeout = options.cellTimeoutSec ?? 600;
  const env: Record<string, string> = {
    NO_COLOR: "1",
    COHERENCE_SCALE: options.scale ?? Deno.env.get("COHERENCE_SCALE") ?? "ci",
    ...options.env,
  };
  if (!pythonFound) {
    const status = await jupyterStatus();
    if (!status.available) throw new Error(`runNotebook: cannot run notebooks: ${status.reason}`);
  }
  const cmd = new Deno.Command(pythonFound!, {
    args: ["-c", DRIVER, abs, executedPath, String(timeout)],
    cwd: dir,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const r = await cmd.output();
  const seconds = (performance.now() - t0) / 1000;
  const stdout = new TextDecoder().decode(r.stdout);
  const stderr = new TextDecoder().decode(r.stderr).replace(ANSI, "");
  const line = stdout.split("\n").find((l) => l.startsWith("@@RESULT@@"));
  if (r.code !== 0 || !line) {
    return {
      notebook: path,
      ok: false,
      seconds,
      error: {
        cellIndex: -1,
        codeCellNumber: -1,
        ename: "DriverError",
        evalue: `the nbclient driver exited with code ${r.code}`,
        traceback: stderr.trim().split("\n").slice(-30),
        source: "",
      },
    };
  }
  const outcome = JSON.parse(line.slice("@@RESULT@@".length));
  const executed = JSON.parse(await Deno.readTextFile(executedPath));
  if (outcome.ok) return { notebook: path, ok: true, executedPath, seconds };
  // Prefer the error output stored in the cell; fall back to what the driver caught.
  const fromCells = firstCellError(executed);
  const cells: IpynbCell[] = executed.cells;
  const codeBefore = cells.slice(0, outcome.cell + 1).filter((c) => c.cell_type === "code").length;
  const cell = cells[outcome.cell];
  const source = cell ? cellSource(cell) : "";
  const error: NotebookCellError = fromCells && fromCells.cellIndex === outcome.cell ? fromCells : {
    cellIndex: outcome.cell,
    codeCellNumber: outcome.cell >= 0 ? codeBefore : -1,
    ename: outcome.ename,
    evalue: String(outcome.evalue ?? "").replace(ANSI, ""),
    traceback: (outcome.traceback as string[]).map((l) => l.replace(ANSI, "")),
    source: source.split("\n").slice(0, 6).join("\n"),
  };
  return { notebook: path, ok: false, executedPath, error, seconds };
}

/** The notebooks in a folder (`*.ipynb`, sorted, checkpoints excluded). */
export async function findNotebooks(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(".ipynb") && !e.name.startsWith(".")) out.push(`${dir}/${e.name}`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

/** A readable failure message for a result. */
export function formatNotebookFailure(r: NotebookRunResult): string {
  const e = r.error;
  if (!e) return `${r.notebook}: ok`;
  const where = e.cellIndex >= 0 ? `cell ${e.cellIndex} (code cell #${e.codeCellNumber})` : "execution";
  return [
    `${r.notebook}: ${where} failed: ${e.ename}: ${e.evalue}`,
    ...(e.source ? ["  source:", ...e.source.split("\n").map((l) => `    ${l}`)] : []),
    ...(e.traceback.length ? ["  traceback:", ...e.traceback.map((l) => `    ${l}`)] : []),
    ...(r.executedPath ? [`  executed copy: ${r.executedPath}`] : []),
  ].join("\n");
}

const USAGE =
  `Usage: deno task notebooks [notebook.ipynb ...] [--scale ci|full] [--timeout SEC] [--out DIR] [--write]

Executes notebooks (default: every notebooks/*.ipynb) with nbclient and the Deno kernel.
  --write         commit mode: run each notebook at the scale its first code cell names
                  ("Committed outputs: COHERENCE_SCALE=ci", default ci) and write it back with outputs,
                  cell ids and a hash of its code cells (what the test suite checks)
  --scale NAME    COHERENCE_SCALE for the notebooks (default: $COHERENCE_SCALE, else ci)
  --timeout SEC   per-cell timeout in seconds (default 600)
  --out DIR       where executed copies go (default: a temp folder)
  -h, --help      show this help`;

async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        scale: { type: "string" },
        timeout: { type: "string", default: "600" },
        out: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
        write: { type: "boolean", default: false },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    console.error(`notebooks: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const timeout = Number(values.timeout);
  if (!(timeout > 0)) {
    console.error(`notebooks: --timeout must be a positive number of seconds, got '${values.timeout}'`);
    return 2;
  }
  const status = await jupyterStatus();
  if (!status.available) {
    console.error(`notebooks: cannot run notebooks: ${status.reason}`);
    return 1;
  }
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const notebooks = positionals.length ? positionals : await findNotebooks(`${root}/notebooks`);
  if (notebooks.length === 0) {
    console.error("notebooks: no notebooks found");
    return 1;
  }
  const outDir = values.out ?? await Deno.makeTempDir({ prefix: "coherence-notebooks-" });
  let failed = 0;
  for (const nb of notebooks) {
    const scale = values.write
      ? values.scale ?? stampScale(JSON.parse(await Deno.readTextFile(nb)))
      : values.scale;
    const r = await runNotebook(nb, { outDir, cellTimeoutSec: timeout, scale });
    if (r.ok && values.write) {
      const stamp = await writeStamped(r.executedPath!, nb, scale ?? "ci");
      console.log(
        `ok   ${nb} (${r.seconds.toFixed(1)}s, ${stamp.scale}) written with outputs, code ${
          stamp.code_sha256.slice(0, 12)
        }`,
      );
    } else if (r.ok) console.log(`ok   ${nb} (${r.seconds.toFixed(1)}s) -> ${r.executedPath}`);
    else {
      failed++;
      console.error(`FAIL ${formatNotebookFailure(r)}`);
    }
  }
  console.log(
    `${notebooks.length - failed}/${notebooks.length} notebooks passed; executed copies in ${outDir}`,
  );
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
