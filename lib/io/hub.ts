/**
 * Model sources: a local folder, or a Hugging Face Hub repo resolved in the local Hugging Face cache
 * (`$HF_HUB_CACHE` or `$HF_HOME/hub`, default `~/.cache/huggingface/hub`), so files downloaded earlier with
 * Python's `huggingface_hub` are reused, and files fetched here are reusable from Python.
 *
 * Cache layout (as huggingface_hub writes it):
 * ```
 * models--org--name/
 *   refs/main                      commit hash the branch pointed to (no newline)
 *   blobs/<etag>                   file contents; etag = sha256 for LFS files, git blob sha1 otherwise
 *   snapshots/<commit>/<file>      relative symlink to ../../blobs/<etag>
 *   .no_exist/<commit>/<file>      empty marker: the file is known not to exist at that commit
 * ```
 *
 * Offline first: a complete cached snapshot is used without any request. Downloads happen only with
 * `allowDownload: true` (and never when `HF_HUB_OFFLINE=1`).
 *
 * @example
 * ```ts
 * import { resolveModelSource } from "./hub.ts";
 * // A local folder (must contain config.json):
 * const folder = await resolveModelSource("data/models/tiny-gpt2");
 * // A Hub repo already in the cache (or downloaded with allowDownload):
 * // const folder2 = await resolveModelSource("hf:openai-community/gpt2", { allowDownload: true });
 * console.log(folder);
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { assertSafeRelativePath, notRegularFileReason } from "./paths.ts";
import { writeTextAtomic } from "./atomic.ts";
import { pidAlive } from "./lock.ts";
import { checkOptionKeys, didYouMean } from "../options.ts";
import BUNDLED from "../../data/models/bundled.json" with { type: "json" };

/**
 * Default Hub endpoint (overridden by the `endpoint` option or `HF_ENDPOINT`).
 *
 * @category IO
 */
export const HF_DEFAULT_ENDPOINT = "https://huggingface.co";

/**
 * Files fetched for a model besides its weights; absent ones are fine.
 *
 * @category IO
 */
export const HF_OPTIONAL_FILES: readonly string[] = [
  "tokenizer.json",
  "tokenizer_config.json",
  "generation_config.json",
];

/**
 * Download progress of one file.
 *
 * @category IO
 */
export interface HubProgress {
  /** Repo-relative file name. */
  file: string;
  /** Bytes received so far. */
  received: number;
  /** Expected size when the server announced one. */
  total?: number;
}

/**
 * Read access to environment variables (injectable for tests).
 *
 * @category IO
 */
export interface HubEnv {
  /** The variable's value, or undefined. */
  get(name: string): string | undefined;
}

/**
 * Options of {@link resolveModelSource}.
 *
 * @category IO
 */
export interface ResolveModelSourceOptions {
  /** Fetch missing files from the Hub (default false: offline). `HF_HUB_OFFLINE=1` forces offline. */
  allowDownload?: boolean;
  /** Hub endpoint (default `HF_ENDPOINT` or https://huggingface.co). */
  endpoint?: string;
  /** Hub cache folder, i.e. the folder holding `models--*` (default from the environment). */
  cacheDir?: string;
  /** Access token for gated/private repos (default `HF_TOKEN`). */
  token?: string;
  /** Progress callback, called for every received chunk. */
  onProgress?: (progress: HubProgress) => void;
  /** More repo files to fetch when downloading, e.g. "special_tokens_map.json" (missing ones are fine). */
  extraFiles?: string[];
  /** Environment lookup (default `Deno.env`, tolerant of missing permission). */
  env?: HubEnv;
  /** `fetch` implementation (default globalThis.fetch). */
  fetch?: typeof fetch;
  /** Milliseconds to wait for a response's headers (connect included) before giving up (default 30000). */
  headersTimeoutMs?: number;
  /** Milliseconds a download may go without receiving a byte before it is dropped (default 60000). */
  idleTimeoutMs?: number;
  /** Extra attempts after a timeout, a dropped connection or an HTTP 5xx/429 (default 3). */
  retries?: number;
  /** Pause before the first retry in ms, doubled on each further one (default 500). */
  retryDelayMs?: number;
  /**
   * Store files the server gave no hash for (no sha256 / git sha1 ETag) instead of refusing them (default
   * false). Such blobs are named `<sha256>.unverified`, a warning is emitted, and they never replace or get
   * linked over a verified file.
   */
  allowUnverified?: boolean;
  /** Receives warnings (unverified files, stale leftovers removed); default `console.warn`. */
  onWarning?: (message: string) => void;
  /**
   * For `http(s)://` folder sources: the sha256 (and size) each file must have, for servers that send no
   * content hash. A file listed here is checked against it instead of the server's ETag.
   */
  checksums?: Record<string, { sha256: string; size?: number }>;
}

/**
 * The keys of {@linkcode ResolveModelSourceOptions} (what `loadModel`/`loadTokenizer` take as `hub`).
 *
 * @category IO
 */
export const RESOLVE_OPTION_KEYS: readonly string[] = [
  "allowDownload",
  "endpoint",
  "cacheDir",
  "token",
  "onProgress",
  "extraFiles",
  "env",
  "fetch",
  "headersTimeoutMs",
  "idleTimeoutMs",
  "retries",
  "retryDelayMs",
  "allowUnverified",
  "onWarning",
  "checksums",
];

/**
 * Checks the options of a loader that takes Hub settings under `hub` (`loadModel`, `loadTokenizer`): a Hub
 * setting given at the top level (`{ allowDownload: true }`) is refused with the exact form to use.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkLoaderOptions } from "./hub.ts";
 * checkLoaderOptions({ hub: { allowDownload: true } }, [], "loadModel");
 * assert.throws(() => checkLoaderOptions({ allowDownload: true }, [], "loadModel"), /\{ hub: \{ allowDownload: true \} \}/);
 * ```
 *
 * @category IO
 * @internal Used inside the library; not part of the stable API.
 */
export function checkLoaderOptions(options: unknown, own: readonly string[], where: string): void {
  if (options && typeof options === "object") {
    for (const k of Object.keys(options)) {
      if (RESOLVE_OPTION_KEYS.includes(k) && !own.includes(k)) {
        const v = JSON.stringify((options as Record<string, unknown>)[k]) ?? "...";
        throw new Error(`${where}: '${k}' is a Hub option: pass it as { hub: { ${k}: ${v} } }`);
      }
    }
  }
  checkOptionKeys(options, ["hub", ...own], where);
  checkOptionKeys((options as { hub?: unknown } | undefined)?.hub, RESOLVE_OPTION_KEYS, `${where}: hub`);
}

/**
 * Everything {@link resolveModelSourceDetailed} found out.
 *
 * @category IO
 */
export interface ModelSourceResolution {
  /** Local folder with config.json and the weights. */
  folder: string;
  /** "local" for a folder path (`bundled:` included, when the library is on disk), "hub" for an `hf:`
   * source, "url" for an `http(s)://` folder. */
  kind: "local" | "hub" | "url";
  /** `org/name` for Hub sources. */
  repo?: string;
  /** The requested revision (branch, tag or commit) for Hub sources. */
  revision?: string;
  /** The commit hash of the snapshot for Hub sources. */
  commit?: string;
  /** Repo files fetched during this call (empty on a cache hit). */
  downloaded: string[];
}

const defaultEnv: HubEnv = {
  get(name: string): string | undefined {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined; // no --allow-env: behave as if unset
    }
  },
};

/**
 * The Hugging Face hub cache folder, resolved as huggingface_hub does: `HF_HUB_CACHE`, else
 * `HF_HOME/hub`, else `XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hubCacheDir } from "./hub.ts";
 * assert.equal(hubCacheDir({ get: (k) => (k === "HF_HOME" ? "/data/hf" : undefined) }), "/data/hf/hub");
 * ```
 *
 * @category IO
 */
export function hubCacheDir(env: HubEnv = defaultEnv): string {
  const hubCache = env.get("HF_HUB_CACHE");
  if (hubCache) return expandHome(hubCache, env);
  const home = env.get("HF_HOME");
  if (home) return `${expandHome(home, env).replace(/\/+$/, "")}/hub`;
  const xdg = env.get("XDG_CACHE_HOME");
  if (xdg) return `${expandHome(xdg, env).replace(/\/+$/, "")}/huggingface/hub`;
  const user = env.get("HOME") ?? env.get("USERPROFILE");
  if (!user) throw new Error("Cannot locate the Hugging Face cache: set HF_HOME or HF_HUB_CACHE (or HOME)");
  return `${user.replace(/\/+$/, "")}/.cache/huggingface/hub`;
}

function expandHome(p: string, env: HubEnv): string {
  if (p === "~" || p.startsWith("~/")) {
    const user = env.get("HOME") ?? env.get("USERPROFILE") ?? "";
    return user + p.slice(1);
  }
  return p;
}

/**
 * A parsed `hf:org/name[@revision]` source.
 *
 * @category IO
 */
export interface HubModelRef {
  /** `org/name` (or a legacy single `name`). */
  repo: string;
  /** Branch, tag or commit hash; "main" when omitted. */
  revision: string;
}

const REPO_PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_-])?$/;
const COMMIT = /^[0-9a-f]{40}$/;

/**
 * Parses and validates `hf:org/name[@revision]` (the `hf:` prefix is required). Repo ids and revisions
 * that could escape the cache folder are rejected.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHubSource } from "./hub.ts";
 * assert.deepEqual(parseHubSource("hf:Qwen/Qwen2-0.5B@main"), { repo: "Qwen/Qwen2-0.5B", revision: "main" });
 * ```
 *
 * @category IO
 */
export function parseHubSource(source: string): HubModelRef {
  if (!source.startsWith("hf:")) {
    throw new Error(`Not a Hub source (expected "hf:org/name[@revision]"): ${source}`);
  }
  const rest = source.slice(3).replace(/^\/\//, "");
  const at = rest.indexOf("@");
  const repo = at < 0 ? rest : rest.slice(0, at);
  const revision = at < 0 ? "main" : rest.slice(at + 1);
  const parts = repo.split("/");
  if (parts.length > 2 || !parts.every((p) => REPO_PART.test(p) && !p.includes(".."))) {
    throw new Error(
      `Invalid Hub repo id "${repo}" in ${JSON.stringify(source)}: expected org/name with letters, digits, ` +
        `".", "_" and "-" only`,
    );
  }
  assertSafeRelativePath(revision, `revision in ${JSON.stringify(source)}`);
  return { repo, revision };
}

/** The cache folder of a model repo: `<cache>/models--org--name`. */
function repoFolder(cacheDir: string, repo: string): string {
  return `${cacheDir.replace(/\/+$/, "")}/models--${repo.split("/").join("--")}`;
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path); // follows symlinks: a dangling snapshot link counts as missing
  } catch {
    return null;
  }
}

async function isFile(path: string): Promise<boolean> {
  return (await statOrNull(path))?.isFile ?? false;
}

async function listFolder(path: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(path)) names.push(e.name);
  } catch { /* unreadable */ }
  return names.sort();
}

/** Weight files of a snapshot folder: the index and its shards, or model.safetensors. */
async function weightFiles(folder: string): Promise<{ present: string[]; missing: string[] } | null> {
  if (await isFile(`${folder}/model.safetensors.index.json`)) {
    const shards = await shardNames(`${folder}/model.safetensors.index.json`);
    const missing: string[] = [];
    for (const s of shards) if (!(await isFile(`${folder}/${s}`))) missing.push(s);
    return {
      present: ["model.safetensors.index.json", ...shards.filter((s) => !missing.includes(s))],
      missing,
    };
  }
  if (await isFile(`${folder}/model.safetensors`)) return { present: ["model.safetensors"], missing: [] };
  return null;
}

/** Distinct shard file names of an index, validated so none can escape the snapshot folder. */
async function shardNames(indexPath: string): Promise<string[]> {
  let index: unknown;
  try {
    index = JSON.parse(await Deno.readTextFile(indexPath));
  } catch (err) {
    throw new Error(`${indexPath} is not valid JSON (${(err as Error).message})`);
  }
  const map = (index as { weight_map?: unknown })?.weight_map;
  if (map === null || typeof map !== "object" || Array.isArray(map)) {
    throw new Error(`${indexPath} has no "weight_map" object`);
  }
  const names = new Set<string>();
  for (const [tensor, file] of Object.entries(map as Record<string, unknown>)) {
    assertSafeRelativePath(file, `shard file name for tensor "${tensor}" in ${indexPath}`);
    names.add(file);
  }
  return [...names];
}

/** Whether a snapshot has everything needed, and what is missing. */
async function snapshotStatus(
  repoDir: string,
  commit: string,
  optional: readonly string[],
): Promise<{ complete: boolean; missingRequired: string[]; unknownOptional: string[] }> {
  const folder = `${repoDir}/snapshots/${commit}`;
  const missingRequired: string[] = [];
  if (!(await isFile(`${folder}/config.json`))) missingRequired.push("config.json");
  const weights = await weightFiles(folder);
  if (!weights) missingRequired.push("model.safetensors (or model.safetensors.index.json + shards)");
  else missingRequired.push(...weights.missing);
  const unknownOptional: string[] = [];
  for (const f of optional) {
    if (await isFile(`${folder}/${f}`)) continue;
    if (await statOrNull(`${repoDir}/.no_exist/${commit}/${f}`)) continue;
    unknownOptional.push(f);
  }
  return { complete: missingRequired.length === 0, missingRequired, unknownOptional };
}

async function readRef(repoDir: string, revision: string): Promise<string | null> {
  if (COMMIT.test(revision)) return revision;
  try {
    const commit = (await Deno.readTextFile(`${repoDir}/refs/${revision}`)).trim();
    return COMMIT.test(commit) ? commit : null;
  } catch {
    return null;
  }
}

/**
 * Resolves a model source to a local folder holding `config.json` and safetensors weights:
 * a local folder path (validated), or `hf:org/name[@revision]` looked up in the Hugging Face cache
 * and, with `allowDownload: true`, completed from the Hub.
 *
 * @example
 * ```ts
 * import { resolveModelSource } from "./hub.ts";
 * import { openCheckpoint } from "./safetensors.ts";
 * const folder = await resolveModelSource("data/models/tiny-gpt2");
 * const ckpt = await openCheckpoint(folder);
 * ckpt.close();
 * ```
 *
 * @category IO
 */
export async function resolveModelSource(
  source: string,
  options: ResolveModelSourceOptions = {},
): Promise<string> {
  return (await resolveModelSourceDetailed(source, options)).folder;
}

/**
 * Like {@link resolveModelSource}, also reporting the repo, revision, commit and downloaded files.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveModelSourceDetailed } from "./hub.ts";
 * const r = await resolveModelSourceDetailed("data/models/tiny-gpt2");
 * assert.deepEqual([r.kind, r.downloaded], ["local", []]);
 * ```
 *
 * @category IO
 */
export async function resolveModelSourceDetailed(
  source: string,
  options: ResolveModelSourceOptions = {},
): Promise<ModelSourceResolution> {
  checkOptionKeys(options, RESOLVE_OPTION_KEYS, "resolveModelSource");
  if (source.startsWith("bundled:")) return await resolveBundled(source, options);
  if (/^https?:\/\//i.test(source)) return await resolveUrlFolder(source, options);
  if (!source.startsWith("hf:")) {
    const folder = source.replace(/\/+$/, "") || "/";
    const st = await statOrNull(folder);
    if (!st) {
      throw new Error(
        `Model source "${source}" is neither an existing folder nor a Hub source; use a folder path, ` +
          `"hf:org/name[@revision]", an http(s):// folder URL or "bundled:NAME" (${
            bundledModelNames().join(", ")
          })` +
          (/^[\w.-]+(\/[\w.-]+)?$/.test(source) && !source.includes(".")
            ? ` (did you mean hf:${source}?)`
            : ""),
      );
    }
    if (!st.isDirectory) throw new Error(`Model source "${source}" is a file; pass the folder that holds it`);
    const why = await notRegularFileReason(`${folder}/config.json`);
    if (why && why !== "does not exist") throw new Error(`Model folder "${folder}": config.json ${why}`);
    if (why) {
      const names = await listFolder(folder);
      const contents = names.length ? names.join(", ") : "(nothing)";
      throw new Error(`Model folder "${folder}" has no config.json; it contains: ${contents}`);
    }
    return { folder, kind: "local", downloaded: [] };
  }

  const { repo, revision } = parseHubSource(source);
  const env = options.env ?? defaultEnv;
  const cacheDir = options.cacheDir ?? hubCacheDir(env);
  const repoDir = repoFolder(cacheDir, repo);
  const optional = [...HF_OPTIONAL_FILES, ...(options.extraFiles ?? [])];
  for (const f of optional) assertSafeRelativePath(f, "extra file name");

  const cachedCommit = await readRef(repoDir, revision);
  let status = cachedCommit ? await snapshotStatus(repoDir, cachedCommit, optional) : null;
  const offline = hubOffline(env);
  const mayDownload = options.allowDownload === true && !offline;
  if (cachedCommit && status?.complete) {
    const downloaded: string[] = [];
    if (mayDownload && status.unknownOptional.length > 0) {
      // The model is usable; only optional files (a tokenizer...) were never looked for. Fetch them pinned
      // to the cached commit so they join this snapshot, and stay usable offline if the Hub is unreachable.
      const dl = new HubDownloader(repo, cachedCommit, repoDir, { ...options, retries: 0 }, env);
      for (const f of status.unknownOptional) {
        try {
          await dl.fetchFile(f, false);
        } catch {
          break; // offline or refused: the cached snapshot is complete without these files
        }
      }
      downloaded.push(...dl.downloaded);
    }
    return {
      folder: `${repoDir}/snapshots/${cachedCommit}`,
      kind: "hub",
      repo,
      revision,
      commit: cachedCommit,
      downloaded,
    };
  }
  if (!mayDownload) {
    const where = cachedCommit
      ? `snapshot ${repoDir}/snapshots/${cachedCommit} lacks: ${status!.missingRequired.join(", ")}`
      : `no cached snapshot for revision "${revision}" (looked for ${repoDir}/refs/${revision})`;
    const command = `huggingface-cli download ${repo}` +
      (revision === "main" ? "" : ` --revision ${revision}`);
    throw new Error(
      `hf:${repo}@${revision} is not fully in the Hugging Face cache (${cacheDir}): ${where}. ` +
        `Download it with \`${command}\` ` +
        `(set HF_HOME/HF_HUB_CACHE if your cache lives elsewhere), or allow downloads: ` +
        `loadModel(source, { hub: { allowDownload: true } }) (the same for loadTokenizer; ` +
        `resolveModelSource takes { allowDownload: true })` +
        (offline ? " and unset HF_HUB_OFFLINE" : "") + ".",
    );
  }

  const dl = new HubDownloader(repo, revision, repoDir, options, env);
  await fetchModelFiles(dl, optional, `hf:${repo}@${revision}`);
  const commit = dl.commit!;
  status = await snapshotStatus(repoDir, commit, []);
  if (!status.complete) {
    throw new Error(
      `hf:${repo}@${revision}: snapshot ${commit} still lacks ${status.missingRequired.join(", ")}`,
    );
  }
  return { folder: dl.snapshot(), kind: "hub", repo, revision, commit, downloaded: dl.downloaded };
}

/**
 * Resolves a source to a folder holding `tokenizer.json`: like {@linkcode resolveModelSource}, except that
 * an `hf:` cache entry needs only the tokenizer files, not the weights (a snapshot downloaded with
 * `huggingface-cli download org/name tokenizer.json` is enough), and a download fetches only those.
 *
 * @category IO
 */
export async function resolveTokenizerSource(
  source: string,
  options: ResolveModelSourceOptions = {},
): Promise<string> {
  if (!source.startsWith("hf:")) {
    if (source.startsWith("bundled:") || /^https?:\/\//i.test(source)) {
      return (await resolveModelSourceDetailed(source, options)).folder;
    }
    return source;
  }
  checkOptionKeys(options, RESOLVE_OPTION_KEYS, "resolveTokenizerSource");
  const { repo, revision } = parseHubSource(source);
  const env = options.env ?? defaultEnv;
  const cacheDir = options.cacheDir ?? hubCacheDir(env);
  const repoDir = repoFolder(cacheDir, repo);
  const commit = await readRef(repoDir, revision);
  if (commit && await isFile(`${repoDir}/snapshots/${commit}/tokenizer.json`)) {
    return `${repoDir}/snapshots/${commit}`;
  }
  const offline = hubOffline(env);
  if (!(options.allowDownload === true && !offline)) {
    throw new Error(
      `hf:${repo}@${revision}: no tokenizer.json in the Hugging Face cache (${cacheDir}). Download it with ` +
        `\`huggingface-cli download ${repo} tokenizer.json tokenizer_config.json\`, or allow downloads: ` +
        `loadTokenizer(source, { hub: { allowDownload: true } })` +
        (offline ? " and unset HF_HUB_OFFLINE" : ""),
    );
  }
  const dl = new HubDownloader(repo, commit ?? revision, repoDir, options, env);
  await dl.fetchFile("tokenizer.json", true);
  for (const f of ["tokenizer_config.json", "config.json", "generation_config.json"]) {
    await dl.fetchFile(f, false);
  }
  return dl.snapshot();
}

/** config.json, the optional files, then the weights (single file or the index and its shards). */
async function fetchModelFiles(dl: HubDownloader, optional: string[], what: string): Promise<void> {
  await dl.fetchFile("config.json", true);
  for (const f of optional) await dl.fetchFile(f, false);
  const hasIndex = await dl.fetchFile("model.safetensors.index.json", false);
  if (hasIndex) {
    const shards = await shardNames(`${dl.snapshot()}/model.safetensors.index.json`);
    for (const s of shards) await dl.fetchFile(s, true);
  } else if (!(await dl.fetchFile("model.safetensors", false))) {
    throw new Error(
      `${what} has neither model.safetensors nor model.safetensors.index.json on ${dl.endpoint}. ` +
        `Pickle weights (pytorch_model.bin) are not loaded because unpickling can execute arbitrary code; ` +
        `convert them with safetensors.torch.save_file, or pick a repo that ships safetensors.`,
    );
  }
}

/** Whether `HF_HUB_OFFLINE` is set ("1" or "true", as huggingface_hub reads it). */
function hubOffline(env: HubEnv): boolean {
  const v = env.get("HF_HUB_OFFLINE");
  return v === "1" || v?.toLowerCase() === "true";
}

/** Files of a trainer checkpoint folder besides config.json and the weights (fetched when present). */
const TRAINER_FILES = ["state.json", "tokens_meta.json"];

/**
 * An `http(s)://` folder: its files are fetched into the Hugging Face cache under
 * `urls--<host>--<hash of the URL>/`, with the checks of Hub downloads (scheme and redirect policy,
 * timeouts, retries, size and content hash; a file with no hash needs `checksums` or `allowUnverified`),
 * and used offline once complete.
 */
async function resolveUrlFolder(
  source: string,
  options: ResolveModelSourceOptions,
): Promise<ModelSourceResolution> {
  const base = source.replace(/\/+$/, "");
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new Error(`Model source ${JSON.stringify(source)} is not a valid URL`);
  }
  const env = options.env ?? defaultEnv;
  const cacheDir = options.cacheDir ?? hubCacheDir(env);
  // The URL's sha1 stands in for a commit: one snapshot per URL, reused offline once complete.
  const id = createHash("sha1").update(base).digest("hex") as string;
  const repoDir = `${cacheDir}/urls--${url.hostname.replace(/[^\w.-]/g, "_")}--${id.slice(0, 16)}`;
  const optional = [...HF_OPTIONAL_FILES, ...TRAINER_FILES, ...(options.extraFiles ?? [])];
  for (const f of optional) assertSafeRelativePath(f, "extra file name");
  const status = await snapshotStatus(repoDir, id, optional);
  const offline = hubOffline(env);
  // Complete and every optional file known, or complete and offline: use the cached snapshot.
  if (status.complete && (status.unknownOptional.length === 0 || offline)) {
    return { folder: `${repoDir}/snapshots/${id}`, kind: "url", commit: id, downloaded: [] };
  }
  if (offline) throw new Error(`${base} is not in the cache (${repoDir}) and HF_HUB_OFFLINE is set`);
  const dl = new HubDownloader(base, id, repoDir, { ...options, endpoint: url.origin }, env, base);
  await fetchModelFiles(dl, optional, base);
  return { folder: dl.snapshot(), kind: "url", commit: id, downloaded: dl.downloaded };
}

/**
 * The models shipped in the library's `data/models/` folder, loadable as `bundled:NAME` from a local
 * checkout or a URL import.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bundledModelNames } from "./hub.ts";
 * assert.ok(bundledModelNames().includes("shakespeare-char"));
 * ```
 *
 * @category IO
 */
export function bundledModelNames(): string[] {
  return Object.keys(BUNDLED);
}

/**
 * `bundled:NAME` relative to this module, so it works from a checkout and from a URL import (then the
 * files are downloaded and checked against the sha256 list shipped with the code, `bundled.json`).
 * `base` replaces the library's own `data/models/` URL (tests serve it locally).
 */
async function resolveBundled(
  source: string,
  options: ResolveModelSourceOptions,
  base: string = new URL("../../data/models/", import.meta.url).href,
): Promise<ModelSourceResolution> {
  const name = source.slice("bundled:".length);
  const files = (BUNDLED as Record<string, Record<string, { sha256: string; size: number }>>)[name];
  if (!files) {
    throw new Error(
      `unknown bundled model ${JSON.stringify(name)}${didYouMean(name, bundledModelNames())}; ` +
        `bundled models: ${bundledModelNames().join(", ")}`,
    );
  }
  const folderUrl = new URL(`${name}/`, base.endsWith("/") ? base : base + "/");
  if (folderUrl.protocol === "file:") {
    return await resolveModelSourceDetailed(decodeURIComponent(folderUrl.pathname), options);
  }
  return await resolveUrlFolder(folderUrl.href, {
    ...options,
    checksums: { ...files, ...options.checksums },
  });
}

/**
 * @internal Test access to {@link resolveBundled} with another base URL.
 *
 * @category IO
 */
export function resolveBundledFrom(
  source: string,
  base: string,
  options: ResolveModelSourceOptions = {},
): Promise<ModelSourceResolution> {
  return resolveBundled(source, options, base);
}

// ---------------------------------------------------------------------------------------------------------
// Downloads

const SAFE_ETAG = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
const MAX_REDIRECTS = 5;
const DEFAULT_HEADERS_TIMEOUT_MS = 30_000;
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** A `*.incomplete` file whose owner cannot be told apart is stale after this long. */
const STALE_INCOMPLETE_MS = 24 * 3600_000;

function normalizeEtag(raw: string | null): string | null {
  if (!raw) return null;
  const e = raw.trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
  return e.length > 0 ? e : null;
}

function randomTag(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A failure worth another attempt: a timeout, a dropped connection, an overloaded server. */
class RetryableError extends Error {}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Removes `*.incomplete` leftovers in a blobs folder that no running download owns: the owner pid (in the
 * name, `.<pid>-<tag>.incomplete`) is gone, or (names without a pid) the file is older than a day.
 */
async function cleanStaleIncomplete(blobsDir: string, warn: (m: string) => void): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(blobsDir));
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.isFile || !e.name.endsWith(".incomplete")) continue;
    const path = `${blobsDir}/${e.name}`;
    const m = e.name.match(/^\.(\d+)-[0-9a-f]+\.incomplete$/);
    let stale: boolean;
    if (m) {
      stale = !pidAlive(Number(m[1]));
    } else {
      const mtime = (await Deno.stat(path).catch(() => null))?.mtime?.getTime() ?? Date.now();
      stale = Date.now() - mtime > STALE_INCOMPLETE_MS;
    }
    if (!stale) continue;
    try {
      await Deno.remove(path);
      warn(`removed a stale partial download ${path}`);
    } catch { /* taken by someone else */ }
  }
}

/** Fetches files of one repo revision into the cache layout. */
class HubDownloader {
  readonly endpoint: string;
  commit: string | undefined;
  readonly downloaded: string[] = [];
  #fetch: typeof fetch;
  #headers: Record<string, string>;
  #origin: string;
  #httpsOnly: boolean;
  #headersTimeout: number;
  #idleTimeout: number;
  #retries: number;
  #retryDelay: number;
  #warn: (message: string) => void;
  #cleaned = false;

  constructor(
    readonly repo: string,
    readonly revision: string,
    readonly repoDir: string,
    readonly options: ResolveModelSourceOptions,
    env: HubEnv,
    /** For a plain `http(s)://` folder: its URL (files are `<folder>/<file>`, no Hub layout). */
    readonly folderUrl?: string,
  ) {
    this.endpoint = (options.endpoint ?? env.get("HF_ENDPOINT") ?? HF_DEFAULT_ENDPOINT).replace(/\/+$/, "");
    let ep: URL;
    try {
      ep = new URL(this.endpoint);
    } catch {
      throw new Error(`Hub endpoint ${JSON.stringify(this.endpoint)} is not a URL`);
    }
    if (ep.protocol !== "https:" && ep.protocol !== "http:") {
      throw new Error(`Hub endpoint ${this.endpoint} must be an http: or https: URL (got ${ep.protocol})`);
    }
    this.#origin = ep.origin;
    // https stays https; plain http is allowed only for an http endpoint on this machine (a test server).
    this.#httpsOnly = !(ep.protocol === "http:" && isLoopback(ep.hostname));
    if (ep.protocol === "http:" && this.#httpsOnly) {
      throw new Error(
        `Hub endpoint ${this.endpoint} is plain http on another host; use https (http is only allowed on ` +
          `loopback, for local test servers)`,
      );
    }
    this.#fetch = options.fetch ?? globalThis.fetch;
    const token = options.token ?? env.get("HF_TOKEN");
    this.#headers = { "user-agent": "coherence-lab", "accept-encoding": "identity" };
    if (token) this.#headers.authorization = `Bearer ${token}`;
    if (COMMIT.test(revision)) this.commit = revision;
    const num = (v: number | undefined, d: number, name: string, min: number) => {
      if (v === undefined) return d;
      if (typeof v !== "number" || !Number.isFinite(v) || v < min) {
        throw new Error(`resolveModelSource option ${name} must be a number >= ${min} (got ${v})`);
      }
      return v;
    };
    this.#headersTimeout = num(options.headersTimeoutMs, DEFAULT_HEADERS_TIMEOUT_MS, "headersTimeoutMs", 1);
    this.#idleTimeout = num(options.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS, "idleTimeoutMs", 1);
    this.#retries = Math.floor(num(options.retries, 3, "retries", 0));
    this.#retryDelay = num(options.retryDelayMs, 500, "retryDelayMs", 0);
    this.#warn = options.onWarning ?? ((m) => console.warn(`warning: ${m}`));
  }

  snapshot(): string {
    return `${this.repoDir}/snapshots/${this.commit}`;
  }

  #url(file: string): string {
    if (this.folderUrl) return `${this.folderUrl}/${file.split("/").map(encodeURIComponent).join("/")}`;
    const rev = encodeURIComponent(this.revision);
    const path = file.split("/").map(encodeURIComponent).join("/");
    return `${this.endpoint}/${this.repo}/resolve/${rev}/${path}`;
  }

  #label(file: string): string {
    if (this.folderUrl) return `${this.folderUrl} file "${file}"`;
    return `hf:${this.repo}@${this.revision} file "${file}"`;
  }

  /** Refuses any URL outside the endpoint's scheme policy (never file:, data:, blob: ...). */
  #checkUrl(url: URL, file: string, from: string): void {
    const ok = url.protocol === "https:" || (url.protocol === "http:" && !this.#httpsOnly);
    if (!ok) {
      throw new Error(
        `${this.#label(file)}: refused a redirect from ${from} to ${url.href}: only ` +
          `${this.#httpsOnly ? "https:" : "http: and https:"} URLs may be fetched from ${this.endpoint}`,
      );
    }
  }

  /** One request with a headers timeout; returns the response and the controller that aborts its body. */
  async #request(url: string, headers: Record<string, string>, file: string) {
    const ac = new AbortController();
    const ms = this.#headersTimeout;
    const timer = setTimeout(() => ac.abort(), ms);
    try {
      const res = await this.#fetch(url, { headers, redirect: "manual", signal: ac.signal });
      return { res, ac };
    } catch (err) {
      if (ac.signal.aborted) {
        throw new RetryableError(`${this.#label(file)}: no response from ${url} within ${ms} ms`);
      }
      throw new RetryableError(`${this.#label(file)}: request to ${url} failed (${(err as Error).message})`);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Resolves `file` through at most {@link MAX_REDIRECTS} redirects, each checked against the scheme
   * policy. A same-origin redirect without X-Linked-Etag is a renamed repo (metadata comes from the final
   * answer); one with X-Linked-Etag, or to another origin, points at LFS storage and carries the metadata.
   */
  async #open(file: string, rangeFrom = 0): Promise<{ meta: Response; res: Response; ac: AbortController }> {
    let url = this.#url(file);
    let meta: Response | undefined;
    for (let hop = 0;; hop++) {
      if (hop > MAX_REDIRECTS) {
        throw new Error(`${this.#label(file)}: more than ${MAX_REDIRECTS} redirects from ${this.#url(file)}`);
      }
      const u = new URL(url);
      const headers: Record<string, string> = u.origin === this.#origin
        ? { ...this.#headers }
        : { "user-agent": "coherence-lab", "accept-encoding": "identity" }; // no token to other hosts
      if (rangeFrom > 0) headers.range = `bytes=${rangeFrom}-`;
      const { res, ac } = await this.#request(url, headers, file);
      const location = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          throw new Error(
            `${this.#label(file)}: ${url} redirected to an invalid URL ${JSON.stringify(location)}`,
          );
        }
        this.#checkUrl(next, file, url);
        if (!meta && (next.origin !== u.origin || res.headers.get("x-linked-etag"))) meta = res;
        url = next.href;
        continue;
      }
      if (res.status >= 500 || res.status === 429) {
        await res.body?.cancel();
        throw new RetryableError(`${this.#label(file)}: HTTP ${res.status} from ${url}`);
      }
      return { meta: meta ?? res, res, ac };
    }
  }

  /** Runs `fn`, retrying {@link RetryableError}s with exponential backoff. */
  async #retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0;; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof RetryableError) || attempt >= this.#retries) {
          if (err instanceof RetryableError && this.#retries > 0) {
            throw new Error(`${err.message} (gave up after ${attempt + 1} attempts)`);
          }
          throw err instanceof RetryableError ? new Error(err.message) : err;
        }
        await delay(this.#retryDelay * 2 ** attempt);
      }
    }
  }

  /**
   * Ensures `file` is in the snapshot. Returns false when the server says it does not exist (and
   * `required` is false); records that in `.no_exist` as huggingface_hub does.
   */
  async fetchFile(file: string, required: boolean): Promise<boolean> {
    assertSafeRelativePath(file, `file name for ${this.#label(file)}`);
    if (this.commit) {
      if (await isFile(`${this.snapshot()}/${file}`)) return true;
      if (!required && await statOrNull(`${this.repoDir}/.no_exist/${this.commit}/${file}`)) return false;
    }
    const { meta, res, ac } = await this.#retrying(() => this.#open(file));
    if (meta.status === 404 || res.status === 404) {
      await res.body?.cancel();
      const code = meta.headers.get("x-error-code");
      if (code === "RevisionNotFound" || code === "RepoNotFound" || required) {
        const why = code ? `HTTP 404, ${code}` : "HTTP 404";
        throw new Error(
          `${this.#label(file)} not found on ${this.endpoint} (${why}). Check the repo id and revision; ` +
            `private or gated repos need a token (HF_TOKEN or { token }).`,
        );
      }
      if (this.commit || meta.headers.get("x-repo-commit")) {
        await this.#setCommit(meta.headers.get("x-repo-commit"), file);
        await this.#markMissing(file);
      }
      return false;
    }
    if (!res.ok || !(meta.ok || (meta.status >= 300 && meta.status < 400))) {
      await res.body?.cancel();
      const status = res.ok ? meta.status : res.status;
      const hint = status === 401 || status === 403
        ? " The repo may be gated or private: accept its terms on the Hub and set HF_TOKEN."
        : "";
      throw new Error(`${this.#label(file)}: HTTP ${status} from ${this.#url(file)}.${hint}`);
    }
    try {
      await this.#setCommit(meta.headers.get("x-repo-commit"), file);
      await Deno.mkdir(`${this.repoDir}/blobs`, { recursive: true });
      if (await isFile(`${this.snapshot()}/${file}`)) {
        await res.body?.cancel();
        return true;
      }
    } catch (err) {
      await res.body?.cancel().catch(() => {});
      throw err;
    }
    const expected = this.options.checksums?.[file];
    const etag = expected?.sha256.toLowerCase() ??
      normalizeEtag(meta.headers.get("x-linked-etag") ?? meta.headers.get("etag"));
    const sizeHeader = meta.headers.get("x-linked-size") ?? res.headers.get("content-length");
    const total = expected?.size ??
      (sizeHeader !== null && /^\d+$/.test(sizeHeader) ? Number(sizeHeader) : undefined);
    const blobName = await this.#downloadBlob(file, res, ac, etag, total);
    await this.#linkSnapshot(file, blobName);
    this.downloaded.push(file);
    return true;
  }

  /** Adopts the commit the server reported; records a branch/tag -> commit ref the first time. */
  async #setCommit(header: string | null, file: string): Promise<void> {
    const c = header?.trim();
    if (c === undefined || c === "") {
      if (this.commit) return;
      throw new Error(
        `${this.#label(file)}: the server sent no X-Repo-Commit header, so the snapshot is unknown`,
      );
    }
    if (!COMMIT.test(c)) {
      throw new Error(`${this.#label(file)}: the server sent an invalid X-Repo-Commit ${JSON.stringify(c)}`);
    }
    if (this.commit && this.commit !== c) {
      throw new Error(
        `${this.#label(file)}: revision moved during the download (commit ${this.commit} then ${c}); retry`,
      );
    }
    if (this.commit) return;
    this.commit = c;
    // Written exactly as huggingface_hub does: refs/<revision> holds the bare hash, no newline.
    const refPath = `${this.repoDir}/refs/${this.revision}`;
    await Deno.mkdir(refPath.slice(0, refPath.lastIndexOf("/")), { recursive: true });
    await writeTextAtomic(refPath, c);
  }

  async #markMissing(file: string): Promise<void> {
    const p = `${this.repoDir}/.no_exist/${this.commit}/${file}`;
    await Deno.mkdir(p.slice(0, p.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(p, new Uint8Array());
  }

  /** Reads one response body into `sink` with the idle timeout; errors of the stream are retryable. */
  async #pump(
    file: string,
    res: Response,
    ac: AbortController,
    sink: (chunk: Uint8Array) => Promise<void>,
  ): Promise<void> {
    if (!res.body) throw new RetryableError(`${this.#label(file)}: empty response body`);
    const reader = res.body.getReader();
    const ms = this.#idleTimeout;
    try {
      for (;;) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const idle = new Promise<"idle">((resolve) => timer = setTimeout(() => resolve("idle"), ms));
        let r: ReadableStreamReadResult<Uint8Array> | "idle";
        try {
          r = await Promise.race([reader.read(), idle]);
        } catch (err) {
          throw new RetryableError(
            `${this.#label(file)}: the download was interrupted (${(err as Error).message})`,
          );
        } finally {
          clearTimeout(timer);
        }
        if (r === "idle") {
          throw new RetryableError(`${this.#label(file)}: no data received for ${ms} ms`);
        }
        if (r.done) return;
        await sink(r.value);
      }
    } catch (err) {
      ac.abort();
      await reader.cancel().catch(() => {});
      throw err;
    } finally {
      try {
        reader.releaseLock();
      } catch { /* pending read after cancel */ }
    }
  }

  /**
   * Streams the body into blobs/, resuming with HTTP Range after a dropped connection or a stall, then
   * checks size and hash; returns the blob's file name.
   */
  async #downloadBlob(
    file: string,
    first: Response,
    firstAc: AbortController,
    etag: string | null,
    total?: number,
  ): Promise<string> {
    const isSha256 = etag !== null && /^[0-9a-f]{64}$/.test(etag);
    const isGitSha1 = etag !== null && /^[0-9a-f]{40}$/.test(etag);
    const verifiable = isSha256 || isGitSha1;
    const blobsDir = `${this.repoDir}/blobs`;
    if (!this.#cleaned) {
      this.#cleaned = true;
      await cleanStaleIncomplete(blobsDir, this.#warn);
    }
    if (!verifiable && !this.options.allowUnverified) {
      await first.body?.cancel();
      throw new Error(
        `${this.#label(file)} cannot be verified: the server sent ${
          etag ? `ETag "${etag}", which is` : "no ETag,"
        } ` +
          `not a sha256 or git sha1 hash, so a corrupted or substituted file would go unnoticed. Refused; ` +
          `pass { allowUnverified: true } to store it marked ".unverified".`,
      );
    }
    if (verifiable && await isFile(`${blobsDir}/${etag}`)) {
      await first.body?.cancel();
      return etag!; // same content already cached (and verified) under another snapshot
    }
    const temp = `${blobsDir}/.${Deno.pid}-${randomTag()}.incomplete`;
    const out = await Deno.open(temp, { write: true, createNew: true });
    let sha256 = createHash("sha256");
    let chunks: Uint8Array[] = []; // kept only for small non-LFS files, to check the git blob hash
    let received = 0;
    const sink = async (chunk: Uint8Array) => {
      received += chunk.length;
      if (total !== undefined && received > total) {
        throw new Error(`${this.#label(file)}: received more than the announced ${total} bytes`);
      }
      sha256.update(chunk);
      if (isGitSha1 && received <= 64 << 20) chunks.push(chunk);
      let off = 0;
      while (off < chunk.length) off += await out.write(chunk.subarray(off));
      this.options.onProgress?.({ file, received, total });
    };
    try {
      let res: Response | null = first;
      let ac = firstAc;
      for (let attempt = 0;; attempt++) {
        try {
          if (!res) {
            const from = received;
            const again = await this.#open(file, from);
            res = again.res;
            ac = again.ac;
            const range = res.headers.get("content-range");
            if (from > 0 && res.status === 206 && range?.startsWith(`bytes ${from}-`)) {
              // resumed: keep what we have
            } else if (res.status === 200) {
              await out.truncate(0);
              await out.seek(0, Deno.SeekMode.Start);
              sha256 = createHash("sha256");
              chunks = [];
              received = 0;
            } else {
              await res.body?.cancel();
              throw new Error(
                `${this.#label(file)}: resuming the download got HTTP ${res.status}` +
                  (range ? ` (Content-Range ${range})` : ""),
              );
            }
          }
          await this.#pump(file, res, ac, sink);
          if (total !== undefined && received < total) {
            throw new RetryableError(
              `${
                this.#label(file)
              }: size mismatch: the connection closed after ${received} of the announced ${total} bytes`,
            );
          }
          break;
        } catch (err) {
          res = null;
          if (!(err instanceof RetryableError) || attempt >= this.#retries) {
            if (err instanceof RetryableError) {
              throw new Error(`${err.message} (gave up after ${attempt + 1} attempts)`);
            }
            throw err;
          }
          await delay(this.#retryDelay * 2 ** attempt);
        }
      }
      if (total !== undefined && received !== total) {
        throw new Error(`size mismatch: received ${received} bytes, the server announced ${total}`);
      }
      const digest = sha256.digest("hex") as string;
      if (isSha256 && digest !== etag) {
        throw new Error(
          `sha256 mismatch: got ${digest}, the server announced ${etag}; the download is corrupt`,
        );
      }
      if (isGitSha1 && received <= 64 << 20) {
        const h = createHash("sha1");
        h.update(`blob ${received}\0`);
        for (const c of chunks) h.update(c);
        const got = h.digest("hex") as string;
        if (got !== etag) {
          throw new Error(
            `git blob sha1 mismatch: got ${got}, the server announced ${etag}; the download is corrupt`,
          );
        }
      }
      await out.sync();
      out.close();
      let blobName: string;
      if (verifiable && SAFE_ETAG.test(etag!)) {
        blobName = etag!;
      } else {
        blobName = `${digest}.unverified`;
        this.#warn(
          `${this.#label(file)} could not be verified (the server sent no content hash); stored as ` +
            `${blobsDir}/${blobName}`,
        );
      }
      await Deno.rename(temp, `${blobsDir}/${blobName}`);
      return blobName;
    } catch (err) {
      try {
        out.close();
      } catch { /* closed */ }
      await Deno.remove(temp).catch(() => {});
      const msg = (err as Error).message;
      throw new Error(msg.startsWith(this.#label(file)) ? msg : `${this.#label(file)}: ${msg}`);
    }
  }

  /**
   * snapshots/<commit>/<file> -> ../../blobs/<blob> (relative symlink; a copy where links fail). An
   * unverified blob is never linked over an existing verified file.
   */
  async #linkSnapshot(file: string, blobName: string): Promise<void> {
    const linkPath = `${this.snapshot()}/${file}`;
    const dir = linkPath.slice(0, linkPath.lastIndexOf("/"));
    await Deno.mkdir(dir, { recursive: true });
    if (blobName.endsWith(".unverified") && await isFile(linkPath)) {
      const current = await Deno.readLink(linkPath).catch(() => "(a copy)");
      if (!current.endsWith(".unverified")) {
        this.#warn(`kept the verified ${linkPath}; the unverified download was not linked over it`);
        return;
      }
    }
    const target = `${"../".repeat(file.split("/").length + 1)}blobs/${blobName}`;
    const temp = `${dir}/.${randomTag()}.link`;
    try {
      await Deno.symlink(target, temp);
    } catch {
      await Deno.copyFile(`${this.repoDir}/blobs/${blobName}`, temp);
    }
    try {
      await Deno.rename(temp, linkPath);
    } catch (err) {
      await Deno.remove(temp).catch(() => {});
      throw err;
    }
  }
}
