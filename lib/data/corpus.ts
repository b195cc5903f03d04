/**
 * Text corpora: a file, a folder of files, or a named public corpus found offline in a data folder, in a
 * cache folder, or downloaded from its canonical URL with its sha256 checked.
 *
 * @module
 */
import { writeFileAtomic } from "../io/atomic.ts";

/**
 * One file of a named corpus.
 *
 * @category Data
 */
export interface CorpusFileSpec {
  /** Split name ("train", "valid", "test"). */
  split: string;
  /** File name inside the corpus folder (the data folder and the cache use the same layout). */
  fileName: string;
  /** Canonical download URL. */
  url: string;
  /** Expected sha256 (hex). Undefined where no pinned hash is known: see {@linkcode loadCorpus}. */
  sha256?: string;
}

/**
 * A named corpus: its folder name and files.
 *
 * @category Data
 */
export interface CorpusSpec {
  /** Corpus name (also its folder name in data and cache folders). */
  name: string;
  /** One line on what the corpus is. */
  description: string;
  /** Its files, one per split. */
  files: CorpusFileSpec[];
}

/**
 * The named corpora {@linkcode loadCorpus} knows.
 *
 * @category Data
 */
export const NAMED_CORPORA: Readonly<Record<string, CorpusSpec>> = {
  tinyshakespeare: {
    name: "tinyshakespeare",
    description: "Tiny Shakespeare (char-rnn), 1,115,394 characters, 65 distinct characters",
    files: [{
      split: "train",
      fileName: "input.txt",
      url: "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
      sha256: "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    }],
  },
  "wikitext-2": {
    name: "wikitext-2",
    description: "WikiText-2, tokenized word-level splits as used by PyTorch's word_language_model example",
    files: ["train", "valid", "test"].map((split) => ({
      split,
      fileName: `${split}.txt`,
      url:
        `https://raw.githubusercontent.com/pytorch/examples/main/word_language_model/data/wikitext-2/${split}.txt`,
      sha256: ({
        valid: "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8",
        test: "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0",
      } as Record<string, string>)[split],
    })),
  },
};

/**
 * Environment variable naming an offline data folder laid out as `<dir>/<corpus>/<file>`.
 *
 * @category Data
 */
export const DATA_DIR_ENV = "COHERENCE_DATA_DIR";
/**
 * Environment variable naming the download cache folder.
 *
 * @category Data
 */
export const CACHE_DIR_ENV = "COHERENCE_CACHE_DIR";

/**
 * Options for {@linkcode loadCorpus}.
 *
 * @category Data
 */
export interface LoadCorpusOptions {
  /** Offline data folder (`<dir>/<corpus>/<file>`); default `$COHERENCE_DATA_DIR`. Must exist if given. */
  dataDir?: string;
  /** Download cache; default `$COHERENCE_CACHE_DIR`, else `$XDG_CACHE_HOME/coherence-lab/corpora`, else `~/.cache/...`. */
  cacheDir?: string;
  /** Split of a named corpus (default: its first split, e.g. "train"). */
  split?: string;
  /** Allow downloads when the file is found neither in the data folder nor in the cache (default true). */
  download?: boolean;
  /** Replaces the start of every canonical URL (testing against a local server): `{ from, to }`. */
  mirror?: { from: string; to: string };
}

/**
 * A loaded corpus.
 *
 * @category Data
 */
export interface Corpus {
  /** The corpus name (named corpus) or the path given. */
  name: string;
  /** The split loaded, for named corpora. */
  split?: string;
  /** The whole text. */
  text: string;
  /** The files read, in order. */
  files: string[];
  /** Where the text came from: "file", "folder", "data-dir", "cache" or "download". */
  origin: "file" | "folder" | "data-dir" | "cache" | "download";
}

/**
 * The sha256 of some bytes, as lowercase hex.
 *
 * @category Data
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function defaultCacheDir(): string {
  const env = Deno.env.get(CACHE_DIR_ENV);
  if (env) return env;
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const home = Deno.env.get("HOME") ?? ".";
  return `${xdg ?? `${home}/.cache`}/coherence-lab/corpora`;
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

const decoder = new TextDecoder("utf-8", { fatal: true });

function decodeText(bytes: Uint8Array, path: string): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new Error(`corpus file '${path}' is not valid UTF-8 text: convert it to UTF-8 first`);
  }
}

/**
 * Loads a corpus. `source` is a path to a text file, a path to a folder (every regular file inside,
 * recursively, in sorted path order, joined with newlines), or a name from {@linkcode NAMED_CORPORA}.
 *
 * A named corpus is looked up, in order: in the data folder (`options.dataDir` or `$COHERENCE_DATA_DIR`),
 * in the cache folder, then downloaded into the cache (atomically) from its canonical URL. Every file
 * with a pinned sha256 is checked wherever it came from. A file without a pinned hash (WikiText-2's train
 * split) records the hash of its first download in `<file>.sha256` and is checked against it afterwards.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadCorpus } from "./corpus.ts";
 * const path = await Deno.makeTempFile({ suffix: ".txt" });
 * await Deno.writeTextFile(path, "to be or not to be");
 * const corpus = await loadCorpus(path);
 * assert.equal(corpus.text, "to be or not to be");
 * ```
 *
 * @category Data
 */
export async function loadCorpus(source: string, options: LoadCorpusOptions = {}): Promise<Corpus> {
  if (!source) throw new Error("loadCorpus: give a file path, a folder path or a corpus name");
  const spec = NAMED_CORPORA[source];
  const info = spec ? null : await statOrNull(source);
  if (!spec && !info) {
    throw new Error(
      `corpus '${source}' is neither an existing file or folder nor a known corpus name: ` +
        `use a path or one of ${Object.keys(NAMED_CORPORA).join(", ")}`,
    );
  }
  let corpus: Corpus;
  if (spec) corpus = await loadNamed(spec, options);
  else if (info!.isDirectory) corpus = await loadFolder(source);
  else {corpus = {
      name: source,
      text: decodeText(await Deno.readFile(source), source),
      files: [source],
      origin: "file",
    };}
  if (corpus.text.length === 0) {
    throw new Error(
      `corpus '${source}' is empty (${corpus.files.join(", ")}): point it at a file with text in it`,
    );
  }
  return corpus;
}

async function loadFolder(dir: string): Promise<Corpus> {
  const files: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.name.startsWith(".")) continue;
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (e.isFile) files.push(p);
    }
  };
  await walk(dir.replace(/\/+$/, ""));
  files.sort();
  if (files.length === 0) throw new Error(`corpus folder '${dir}' holds no files: put text files in it`);
  const parts: string[] = [];
  for (const f of files) parts.push(decodeText(await Deno.readFile(f), f));
  return { name: dir, text: parts.join("\n"), files, origin: "folder" };
}

async function loadNamed(spec: CorpusSpec, options: LoadCorpusOptions): Promise<Corpus> {
  const split = options.split ?? spec.files[0].split;
  const file = spec.files.find((f) => f.split === split);
  if (!file) {
    throw new Error(
      `corpus '${spec.name}' has no split '${split}': use one of ${
        spec.files.map((f) => f.split).join(", ")
      }`,
    );
  }
  const dataDir = options.dataDir ?? Deno.env.get(DATA_DIR_ENV);
  if (dataDir) {
    const st = await statOrNull(dataDir);
    if (!st || !st.isDirectory) {
      const via = options.dataDir ? "the data folder option" : `$${DATA_DIR_ENV}`;
      throw new Error(
        `data folder '${dataDir}' (from ${via}) does not exist: create it with <corpus>/<file> inside, ` +
          `or leave it unset to use the download cache`,
      );
    }
    const path = `${dataDir}/${spec.name}/${file.fileName}`;
    if (await statOrNull(path)) {
      const bytes = await Deno.readFile(path);
      await verifyHash(bytes, file, path);
      return { name: spec.name, split, text: decodeText(bytes, path), files: [path], origin: "data-dir" };
    }
  }
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const path = `${cacheDir}/${spec.name}/${file.fileName}`;
  if (await statOrNull(path)) {
    const bytes = await Deno.readFile(path);
    await verifyHash(bytes, file, path, await readRecordedHash(path));
    return { name: spec.name, split, text: decodeText(bytes, path), files: [path], origin: "cache" };
  }
  if (options.download === false) {
    throw new Error(
      `corpus '${spec.name}' (${split}) is not in ${dataDir ? `the data folder '${dataDir}' or ` : ""}` +
        `the cache '${cacheDir}', and downloads are off: set ${DATA_DIR_ENV} to a folder holding ` +
        `${spec.name}/${file.fileName}, or allow the download`,
    );
  }
  const url = options.mirror && file.url.startsWith(options.mirror.from)
    ? options.mirror.to + file.url.slice(options.mirror.from.length)
    : file.url;
  let bytes: Uint8Array;
  try {
    const res = await fetch(url);
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`HTTP ${res.status} ${res.statusText}`);
    }
    bytes = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw new Error(
      `downloading corpus '${spec.name}' (${split}) from ${url} failed (${(e as Error).message}): ` +
        `check the network, or set ${DATA_DIR_ENV} to a folder holding ${spec.name}/${file.fileName}`,
    );
  }
  await verifyHash(bytes, file, url);
  await Deno.mkdir(`${cacheDir}/${spec.name}`, { recursive: true });
  await writeFileAtomic(path, bytes);
  if (!file.sha256) {
    const hex = await sha256Hex(bytes);
    await writeFileAtomic(`${path}.sha256`, new TextEncoder().encode(`${hex}\n`));
    console.error(
      `[corpus] ${spec.name}/${file.fileName} has no pinned sha256; recorded ${hex} for later checks`,
    );
  }
  return { name: spec.name, split, text: decodeText(bytes, url), files: [path], origin: "download" };
}

async function readRecordedHash(path: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(`${path}.sha256`)).trim();
  } catch {
    return undefined;
  }
}

async function verifyHash(bytes: Uint8Array, file: CorpusFileSpec, where: string, recorded?: string) {
  const want = file.sha256 ?? recorded;
  if (!want) return;
  const got = await sha256Hex(bytes);
  if (got !== want) {
    throw new Error(
      `corpus file '${where}' has sha256 ${got} but ${want} was expected: the file is corrupt or a different ` +
        `version; delete it so it is downloaded again, or replace it with the canonical file`,
    );
  }
}
