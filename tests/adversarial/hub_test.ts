/**
 * Hostile Hub servers (on 127.0.0.1 only): redirects off the network, stalls, trickles, dropped connections,
 * unverifiable bodies and leftovers. Every case here once got through.
 */
import { createHash } from "node:crypto";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { resolveModelSource, type ResolveModelSourceOptions } from "../../lib/io/hub.ts";
import { encodeSafetensors } from "../../lib/io/safetensors.ts";
import { tmpDir } from "../io/tmp.ts";

const enc = new TextEncoder();
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex") as string;
const gitSha1 = (b: Uint8Array) =>
  createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex") as string;
const COMMIT = "89abcdef0123456789abcdef0123456789abcdef";
const noEnv = { get: (_: string) => undefined };

const CONFIG = enc.encode(JSON.stringify({ model_type: "gpt2" }));
const WEIGHTS = encodeSafetensors({
  w: { dtype: "F32", shape: [64], data: Float32Array.from({ length: 64 }, (_, i) => i) },
});

type Handler = (req: Request, file: string) => Response | null | Promise<Response | null>;

/**
 * A Hub whose config.json is plain and whose model.safetensors is answered by `weights` (default: a normal
 * 200 with sha256 ETag). Other files are 404 EntryNotFound.
 */
function startHub(weights?: Handler) {
  const requests: { path: string; range: string | null }[] = [];
  const pending: (() => void)[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    requests.push({ path: url.pathname, range: req.headers.get("range") });
    const m = url.pathname.match(/^\/org\/m\/resolve\/[^/]+\/(.+)$/);
    const file = m ? decodeURIComponent(m[1]) : url.pathname;
    const base = { "x-repo-commit": COMMIT };
    if (file === "config.json") {
      return new Response(CONFIG, { headers: { ...base, etag: `"${gitSha1(CONFIG)}"` } });
    }
    if (file === "model.safetensors" || !m) {
      const r = weights ? await weights(req, file) : null;
      if (r) return r;
      if (file === "model.safetensors") {
        return new Response(WEIGHTS, { headers: { ...base, "x-linked-etag": `"${sha256(WEIGHTS)}"` } });
      }
    }
    return new Response("no", { status: 404, headers: { ...base, "x-error-code": "EntryNotFound" } });
  });
  return {
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    requests,
    /** A promise the handler can wait on; resolved at close so the server can shut down. */
    hang: () => new Promise<void>((r) => pending.push(r)),
    close: async () => {
      for (const r of pending) r();
      await server.shutdown();
    },
  };
}

async function listRecursive(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    out.push(prefix + e.name);
    if (e.isDirectory) out.push(...await listRecursive(`${dir}/${e.name}`, prefix + e.name + "/"));
  }
  return out.sort();
}

async function withHub(
  weights: Handler | undefined,
  body: (
    hub: ReturnType<typeof startHub>,
    opts: ResolveModelSourceOptions,
    cacheDir: string,
  ) => Promise<void>,
) {
  const hub = startHub(weights);
  const cacheDir = await tmpDir();
  const opts: ResolveModelSourceOptions = {
    cacheDir,
    env: noEnv,
    endpoint: hub.endpoint,
    allowDownload: true,
    retries: 1,
    retryDelayMs: 1,
    headersTimeoutMs: 300,
    idleTimeoutMs: 300,
    onWarning: () => {},
  };
  try {
    await body(hub, opts, cacheDir);
  } finally {
    await hub.close();
  }
}

async function noLeftovers(cacheDir: string) {
  const files = await listRecursive(cacheDir);
  assertEquals(files.filter((f) => f.endsWith(".incomplete") || f.endsWith(".link")), []);
  assert(!files.some((f) => f.endsWith("model.safetensors")), files.join("\n"));
}

for (const target of ["file:///etc/passwd", "file:///dev/zero", "data:,hello", "ftp://127.0.0.1/x"]) {
  Deno.test(`a redirect to ${target} is refused and nothing is cached`, async () => {
    await withHub((_req, file) =>
      file === "model.safetensors"
        ? new Response(null, {
          status: 302,
          headers: { location: target, "x-repo-commit": COMMIT, "x-linked-etag": `"${"a".repeat(64)}"` },
        })
        : null, async (_hub, opts, cacheDir) => {
      await assertRejects(() => resolveModelSource("hf:org/m", opts), Error, `refused a redirect`);
      await noLeftovers(cacheDir);
    });
  });
}

Deno.test("an https endpoint may not be redirected to plain http, nor may a non-loopback http endpoint be used", async () => {
  const seen: string[] = [];
  const fakeFetch = ((input: string | URL | Request) => {
    const url = String(input);
    seen.push(url);
    return Promise.resolve(
      new Response(null, {
        status: 302,
        headers: {
          location: "http://cdn.example/blob",
          "x-repo-commit": COMMIT,
          etag: `"${"b".repeat(40)}"`,
        },
      }),
    );
  }) as typeof fetch;
  const cacheDir = await tmpDir();
  const opts = { cacheDir, env: noEnv, allowDownload: true, fetch: fakeFetch, onWarning: () => {} };
  const err = await assertRejects(
    () => resolveModelSource("hf:org/m", { ...opts, endpoint: "https://hub.example" }),
    Error,
    "only https: URLs may be fetched",
  );
  assert(err.message.includes("http://cdn.example/blob"), err.message);
  assertEquals(seen, ["https://hub.example/org/m/resolve/main/config.json"]);
  await assertRejects(
    () => resolveModelSource("hf:org/m", { ...opts, endpoint: "http://hub.example" }),
    Error,
    "plain http on another host",
  );
  await assertRejects(
    () => resolveModelSource("hf:org/m", { ...opts, endpoint: "file:///etc" }),
    Error,
    "must be an http: or https: URL",
  );
  assertEquals(seen.length, 1);
});

Deno.test("a redirect loop stops after the cap", async () => {
  await withHub(
    (req, file) =>
      file === "model.safetensors" || file.startsWith("/loop")
        ? new Response(null, {
          status: 302,
          headers: { location: `/loop${new URL(req.url).pathname.length}` },
        })
        : null,
    async (hub, opts, cacheDir) => {
      await assertRejects(() => resolveModelSource("hf:org/m", opts), Error, "more than 5 redirects");
      assert(hub.requests.filter((r) => r.path.startsWith("/loop")).length <= 5);
      await noLeftovers(cacheDir);
    },
  );
});

Deno.test("a server that never sends headers times out (with retries), quickly", async () => {
  let hub: ReturnType<typeof startHub> | undefined;
  await withHub(async (_req, file) => {
    if (file !== "model.safetensors") return null;
    await hub!.hang();
    return new Response("late");
  }, async (h, opts, cacheDir) => {
    hub = h;
    const t0 = performance.now();
    const err = await assertRejects(() => resolveModelSource("hf:org/m", opts), Error, "no response from");
    assert(
      err.message.includes("within 300 ms") && err.message.includes("gave up after 2 attempts"),
      err.message,
    );
    assert(performance.now() - t0 < 5000);
    await noLeftovers(cacheDir);
  });
});

Deno.test("a body that trickles one byte every two seconds is dropped by the idle timeout", async () => {
  const timers = new Set<ReturnType<typeof setInterval>>();
  try {
    await withHub((_req, file) => {
      if (file !== "model.safetensors") return null;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(WEIGHTS.subarray(0, 1));
          const t = setInterval(() => {
            try {
              c.enqueue(WEIGHTS.subarray(0, 1));
            } catch { /* cancelled */ }
          }, 2000);
          timers.add(t);
        },
      });
      return new Response(body, {
        headers: { "x-repo-commit": COMMIT, "x-linked-etag": `"${sha256(WEIGHTS)}"` },
      });
    }, async (_hub, opts, cacheDir) => {
      const err = await assertRejects(() => resolveModelSource("hf:org/m", opts), Error, "no data received");
      assert(err.message.includes("300 ms"), err.message);
      await noLeftovers(cacheDir);
    });
  } finally {
    for (const t of timers) clearInterval(t);
  }
});

Deno.test("a dropped connection is resumed with a Range request and the result verified", async () => {
  let first = true;
  await withHub((req, file) => {
    if (file !== "model.safetensors") return null;
    const headers = { "x-repo-commit": COMMIT, "x-linked-etag": `"${sha256(WEIGHTS)}"` };
    const half = 100;
    if (first) {
      first = false;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(WEIGHTS.slice(0, half));
          setTimeout(() => c.error(new Error("dropped")), 20);
        },
      });
      return new Response(body, {
        headers: { ...headers, "x-linked-size": String(WEIGHTS.length) },
      });
    }
    const range = req.headers.get("range")?.match(/^bytes=(\d+)-$/);
    assert(range, "the retry must ask for the rest");
    const from = Number(range[1]);
    return new Response(WEIGHTS.slice(from), {
      status: 206,
      headers: { ...headers, "content-range": `bytes ${from}-${WEIGHTS.length - 1}/${WEIGHTS.length}` },
    });
  }, async (hub, opts, cacheDir) => {
    const folder = await resolveModelSource("hf:org/m", opts);
    assertEquals(await Deno.readFile(`${folder}/model.safetensors`), WEIGHTS);
    assertEquals(hub.requests.filter((r) => r.range).map((r) => r.range), ["bytes=100-"]);
    assertEquals((await listRecursive(cacheDir)).filter((f) => f.endsWith(".incomplete")), []);
  });
});

Deno.test("HTTP 503 then success: retried", async () => {
  let n = 0;
  await withHub(
    (_req, file) => file === "model.safetensors" && n++ === 0 ? new Response("busy", { status: 503 }) : null,
    async (_h, opts) => {
      const folder = await resolveModelSource("hf:org/m", opts);
      assertEquals(await Deno.readFile(`${folder}/model.safetensors`), WEIGHTS);
      assertEquals(n, 2);
    },
  );
});

Deno.test("unverifiable weights (no hash etag, no size) are refused, or stored marked unverified", async () => {
  const bad = WEIGHTS.slice();
  bad[bad.length - 1] ^= 1;
  await withHub((_req, file) =>
    file === "model.safetensors"
      ? new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(bad);
            c.close();
          },
        }),
        { headers: { "x-repo-commit": COMMIT, etag: `"not-a-hash"` } },
      )
      : null, async (_hub, opts, cacheDir) => {
    await assertRejects(() => resolveModelSource("hf:org/m", opts), Error, "cannot be verified");
    await noLeftovers(cacheDir);
    const warnings: string[] = [];
    const folder = await resolveModelSource("hf:org/m", {
      ...opts,
      allowUnverified: true,
      onWarning: (m) => void warnings.push(m),
    });
    const link = await Deno.readLink(`${folder}/model.safetensors`);
    assertEquals(link, `../../blobs/${sha256(bad)}.unverified`);
    assert(warnings.some((w) => w.includes("could not be verified")), warnings.join("\n"));
    // A non-hash etag never names the blob, so it cannot alias a verified blob.
    assert(!(await listRecursive(cacheDir)).some((f) => f.endsWith("not-a-hash")));
  });
});

Deno.test("an unverified download is never linked over a verified snapshot file", async () => {
  const cacheDir = await tmpDir();
  // First a verified download.
  await withHub(undefined, async (_hub, opts) => {
    await resolveModelSource("hf:org/m", { ...opts, cacheDir });
  });
  const folder = `${cacheDir}/models--org--m/snapshots/${COMMIT}`;
  const good = await Deno.readLink(`${folder}/model.safetensors`);
  // Then the blob goes missing (a cleanup) and a server sends an unverifiable substitute.
  const bad = WEIGHTS.slice();
  bad[10] ^= 1;
  await withHub(
    (_req, file) =>
      file === "model.safetensors" ? new Response(bad, { headers: { "x-repo-commit": COMMIT } }) : null,
    async (
      _hub,
      opts,
    ) => {
      await Deno.remove(`${folder}/config.json`); // force a re-resolve; the weights link stays verified
      await resolveModelSource("hf:org/m", { ...opts, cacheDir, allowUnverified: true });
    },
  );
  assertEquals(await Deno.readLink(`${folder}/model.safetensors`), good);
  assertEquals(await Deno.readFile(`${folder}/model.safetensors`), WEIGHTS);
});

Deno.test("stale *.incomplete files are cleaned; a live download's is kept", async () => {
  await withHub(undefined, async (_hub, opts, cacheDir) => {
    const blobs = `${cacheDir}/models--org--m/blobs`;
    await Deno.mkdir(blobs, { recursive: true });
    const dead = `${blobs}/.999999999-abcdef.incomplete`;
    const live = `${blobs}/.${Deno.pid}-abcdef.incomplete`;
    const oldAnon = `${blobs}/.abcdef.incomplete`;
    const freshAnon = `${blobs}/.fedcba.incomplete`;
    for (const p of [dead, live, oldAnon, freshAnon]) await Deno.writeFile(p, new Uint8Array(3));
    const dayAgo = new Date(Date.now() - 2 * 24 * 3600_000);
    await Deno.utime(oldAnon, dayAgo, dayAgo);
    await resolveModelSource("hf:org/m", opts);
    const left = (await listRecursive(blobs)).filter((f) => f.endsWith(".incomplete"));
    assertEquals(left.sort(), [`.${Deno.pid}-abcdef.incomplete`, ".fedcba.incomplete"].sort());
  });
});
