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
 * const folder = await resolveModelSource("../shared/fixtures/hf/tiny-gpt2");
 * // A Hub repo already in the cache (or downloaded with allowDownload):
 * // const folder2 = await resolveModelSource("hf:openai-community/gpt2", { allowDownload: true });
 * console.log(folder);
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { assertSafeRelativePath } from "./paths.ts";
import { writeTextAtomic } from "./atomic.ts";

/** Default Hub endpoint (overridden by the `endpoint` option or `HF_ENDPOINT`). */
export const HF_DEFAULT_ENDPOINT = "https://huggingface.co";

/** Files fetched for a model besides its weights; absent ones are fine. */
export const HF_OPTIONAL_FILES: readonly string[] = [
  "tokenizer.json",
  "tokenizer_config.json",
  "generation_config.json",
];

/** Download progress of one file. */
export interface HubProgress {
  /** Repo-relative file name. */
  file: string;
  /** Bytes received so far. */
  received: number;
  /** Expected size when the server announced one. */
  total?: number;
}

/** Read access to environment variables (injectable for tests). */
export interface HubEnv {
  /** The variable's value, or undefined. */
  get(name: string): string | undefined;
}

/** Options of {@link resolveModelSource}. */
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
}

/** Everything {@link resolveModelSourceDetailed} found out. */
export interface ModelSourceResolution {
  /** Local folder with config.json and the weights. */
  folder: string;
  /** "local" for a folder path, "hub" for an `hf:` source. */
  kind: "local" | "hub";
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
 * import { hubCacheDir } from "./hub.ts";
 * console.log(hubCacheDir({ get: (k) => (k === "HF_HOME" ? "/data/hf" : undefined) })); // /data/hf/hub
 * ```
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

/** A parsed `hf:org/name[@revision]` source. */
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
 * import { parseHubSource } from "./hub.ts";
 * console.log(parseHubSource("hf:Qwen/Qwen2-0.5B@main")); // { repo: "Qwen/Qwen2-0.5B", revision: "main" }
 * ```
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
 * const folder = await resolveModelSource("../shared/fixtures/hf/tiny-gpt2");
 * const ckpt = await openCheckpoint(folder);
 * ckpt.close();
 * ```
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
 * import { resolveModelSourceDetailed } from "./hub.ts";
 * const r = await resolveModelSourceDetailed("../shared/fixtures/hf/tiny-gpt2");
 * console.log(r.kind, r.downloaded); // "local" []
 * ```
 */
export async function resolveModelSourceDetailed(
  source: string,
  options: ResolveModelSourceOptions = {},
): Promise<ModelSourceResolution> {
  if (!source.startsWith("hf:")) {
    const folder = source.replace(/\/+$/, "") || "/";
    const st = await statOrNull(folder);
    if (!st) {
      throw new Error(
        `Model source "${source}" is neither an existing folder nor a Hub source; use a folder path or ` +
          `"hf:org/name[@revision]"`,
      );
    }
    if (!st.isDirectory) throw new Error(`Model source "${source}" is a file; pass the folder that holds it`);
    if (!(await isFile(`${folder}/config.json`))) {
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
  const offline = env.get("HF_HUB_OFFLINE") === "1" || env.get("HF_HUB_OFFLINE")?.toLowerCase() === "true";
  const mayDownload = options.allowDownload === true && !offline;
  if (cachedCommit && status?.complete) {
    const downloaded: string[] = [];
    if (mayDownload && status.unknownOptional.length > 0) {
      // The model is usable; only optional files (a tokenizer...) were never looked for. Fetch them pinned
      // to the cached commit so they join this snapshot, and stay usable offline if the Hub is unreachable.
      const dl = new HubDownloader(repo, cachedCommit, repoDir, options, env);
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
        `(set HF_HOME/HF_HUB_CACHE if your cache lives elsewhere), or pass { allowDownload: true }` +
        (offline ? " and unset HF_HUB_OFFLINE" : "") + ".",
    );
  }

  const dl = new HubDownloader(repo, revision, repoDir, options, env);
  await dl.fetchFile("config.json", true);
  for (const f of optional) await dl.fetchFile(f, false);
  const hasIndex = await dl.fetchFile("model.safetensors.index.json", false);
  if (hasIndex) {
    const shards = await shardNames(`${dl.snapshot()}/model.safetensors.index.json`);
    for (const s of shards) await dl.fetchFile(s, true);
  } else if (!(await dl.fetchFile("model.safetensors", false))) {
    throw new Error(
      `hf:${repo}@${revision} has neither model.safetensors nor model.safetensors.index.json on ${dl.endpoint}. ` +
        `Pickle weights (pytorch_model.bin) are not loaded because unpickling can execute arbitrary code; ` +
        `convert them with safetensors.torch.save_file, or pick a repo that ships safetensors.`,
    );
  }
  const commit = dl.commit!;
  status = await snapshotStatus(repoDir, commit, []);
  if (!status.complete) {
    throw new Error(
      `hf:${repo}@${revision}: snapshot ${commit} still lacks ${status.missingRequired.join(", ")}`,
    );
  }
  return { folder: dl.snapshot(), kind: "hub", repo, revision, commit, downloaded: dl.downloaded };
}

// ---------------------------------------------------------------------------------------------------------
// Downloads

const SAFE_ETAG = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

function normalizeEtag(raw: string | null): string | null {
  if (!raw) return null;
  const e = raw.trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
  return e.length > 0 ? e : null;
}

function randomTag(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Fetches files of one repo revision into the cache layout. */
class HubDownloader {
  readonly endpoint: string;
  commit: string | undefined;
  readonly downloaded: string[] = [];
  #fetch: typeof fetch;
  #headers: Record<string, string>;

  constructor(
    readonly repo: string,
    readonly revision: string,
    readonly repoDir: string,
    readonly options: ResolveModelSourceOptions,
    env: HubEnv,
  ) {
    this.endpoint = (options.endpoint ?? env.get("HF_ENDPOINT") ?? HF_DEFAULT_ENDPOINT).replace(/\/+$/, "");
    this.#fetch = options.fetch ?? globalThis.fetch;
    const token = options.token ?? env.get("HF_TOKEN");
    this.#headers = { "user-agent": "coherence-lab", "accept-encoding": "identity" };
    if (token) this.#headers.authorization = `Bearer ${token}`;
    if (COMMIT.test(revision)) this.commit = revision;
  }

  snapshot(): string {
    return `${this.repoDir}/snapshots/${this.commit}`;
  }

  #url(file: string): string {
    const rev = encodeURIComponent(this.revision);
    const path = file.split("/").map(encodeURIComponent).join("/");
    return `${this.endpoint}/${this.repo}/resolve/${rev}/${path}`;
  }

  #label(file: string): string {
    return `hf:${this.repo}@${this.revision} file "${file}"`;
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
    // Redirects are followed by hand so the Hub's metadata headers stay visible: a same-origin redirect
    // without X-Linked-Etag is a renamed repo (follow it, read metadata from the final answer); one that
    // carries X-Linked-Etag points at LFS storage, whose response carries only the bytes.
    let url = this.#url(file);
    let res: Response;
    let meta: Response;
    for (let hop = 0;; hop++) {
      if (hop > 5) throw new Error(`${this.#label(file)}: too many redirects from ${this.#url(file)}`);
      try {
        res = await this.#fetch(url, { headers: this.#headers, redirect: "manual" });
      } catch (err) {
        throw new Error(`${this.#label(file)}: request to ${url} failed (${(err as Error).message})`);
      }
      if (res.status >= 300 && res.status < 400 && res.headers.get("location")) {
        const next = new URL(res.headers.get("location")!, url);
        await res.body?.cancel();
        if (next.origin === new URL(url).origin && !res.headers.get("x-linked-etag")) {
          url = next.href;
          continue;
        }
        meta = res;
        try {
          res = await this.#fetch(next.href, { headers: { "accept-encoding": "identity" } });
        } catch (err) {
          throw new Error(
            `${this.#label(file)}: download from ${next.href} failed (${(err as Error).message})`,
          );
        }
        break;
      }
      meta = res;
      break;
    }
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
      throw new Error(`${this.#label(file)}: HTTP ${status} from ${url}.${hint}`);
    }
    await this.#setCommit(meta.headers.get("x-repo-commit"), file);
    await Deno.mkdir(`${this.repoDir}/blobs`, { recursive: true });
    if (await isFile(`${this.snapshot()}/${file}`)) {
      await res.body?.cancel();
      return true;
    }
    const etag = normalizeEtag(meta.headers.get("x-linked-etag") ?? meta.headers.get("etag"));
    const sizeHeader = meta.headers.get("x-linked-size") ?? res.headers.get("content-length");
    const total = sizeHeader !== null && /^\d+$/.test(sizeHeader) ? Number(sizeHeader) : undefined;
    const blobName = await this.#downloadBlob(file, res, etag, total);
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

  /** Streams the body into blobs/, checking size and hash; returns the blob's file name. */
  async #downloadBlob(file: string, res: Response, etag: string | null, total?: number): Promise<string> {
    const isSha256 = etag !== null && /^[0-9a-f]{64}$/.test(etag);
    const isGitSha1 = etag !== null && /^[0-9a-f]{40}$/.test(etag);
    const blobsDir = `${this.repoDir}/blobs`;
    if (etag && SAFE_ETAG.test(etag) && await isFile(`${blobsDir}/${etag}`)) {
      await res.body?.cancel();
      return etag; // same content already cached under another snapshot
    }
    const temp = `${blobsDir}/.${randomTag()}.incomplete`;
    const out = await Deno.open(temp, { write: true, createNew: true });
    const sha256 = createHash("sha256");
    const chunks: Uint8Array[] = []; // kept only for small non-LFS files, to check the git blob hash
    let received = 0;
    try {
      if (!res.body) throw new Error("empty response body");
      for await (const chunk of res.body) {
        received += chunk.length;
        if (total !== undefined && received > total) {
          throw new Error(`received more than the announced ${total} bytes`);
        }
        sha256.update(chunk);
        if (isGitSha1 && received <= 64 << 20) chunks.push(chunk);
        let off = 0;
        while (off < chunk.length) off += await out.write(chunk.subarray(off));
        this.options.onProgress?.({ file, received, total });
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
      const blobName = etag && SAFE_ETAG.test(etag) ? etag : digest;
      await Deno.rename(temp, `${blobsDir}/${blobName}`);
      return blobName;
    } catch (err) {
      try {
        out.close();
      } catch { /* closed */ }
      await Deno.remove(temp).catch(() => {});
      throw new Error(`${this.#label(file)}: ${(err as Error).message}`);
    }
  }

  /** snapshots/<commit>/<file> -> ../../blobs/<blob> (relative symlink; a copy where links fail). */
  async #linkSnapshot(file: string, blobName: string): Promise<void> {
    const linkPath = `${this.snapshot()}/${file}`;
    const dir = linkPath.slice(0, linkPath.lastIndexOf("/"));
    await Deno.mkdir(dir, { recursive: true });
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
