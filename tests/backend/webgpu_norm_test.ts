/**
 * The fused webgpu LayerNorm and RMSNorm kernels (lib/backend/webgpu_norm.ts) against the stock
 * composition over a grid of widths (1, 3, 64, 65, 768, 1000), rows (1, 7, 300, and 66000 for the 2-D
 * dispatch), ranks 1-3, a large common offset (x + 1000) and eps (1e-5, 1e-6, 0.1); their analytic
 * gradients against tf.grads of the composition; that lib/nn/norm.ts takes the fused path on webgpu and
 * stays bit-identical to the composition (forward and gradients) on cpu and wasm; and that forward +
 * backward leaks nothing.
 *
 * Tolerance: |got − want| ≤ 1e-6 + 1e-5·|want| elementwise, times √rows for dgain and dbias (sums over
 * rows), against a float64 evaluation of the same formula in JS, and against the stock composition on
 * webgpu wherever that is itself within the tolerance of float64 (see {@linkcode judge}).
 */
import { assert, assertEquals } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { fusedLayerNorm, fusedNormCalls, fusedRmsNorm } from "../../lib/backend/webgpu_norm.ts";
import { applyNorm, layerNorm, rmsNorm } from "../../lib/nn/norm.ts";
import { useBackend } from "../fixtures.ts";
import { requestAdapter } from "../../lib/backend/backend.ts";

/** The webgpu tests run where an adapter exists (llvmpipe counts), as in tests/models/parity_test.ts. */
const haveAdapter = (await requestAdapter()) !== null;

function gpuTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: !haveAdapter, fn });
}

const ABS = 1e-6, REL = 1e-5;

/** The composition lib/nn/norm.ts runs off webgpu, verbatim. */
function stockLayerNorm(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | undefined, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const mean = tf.mean(x, -1, true);
    const centred = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centred), -1, true);
    const y = tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, eps))), w);
    return b ? tf.add(y, b) : y;
  });
}

function stockRmsNorm(x: tf.Tensor, w: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const ms = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), w);
  });
}

/** The norm in float64 over rows of `width` (the exact answer the float32 kernels approximate). */
function exactNorm(
  kind: "layer" | "rms",
  x: Float32Array,
  width: number,
  g: Float32Array,
  b: Float32Array | undefined,
  eps: number,
): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / width; r++) {
    const row = x.subarray(r * width, (r + 1) * width);
    let mean = 0, v = 0;
    if (kind === "layer") {
      for (const e of row) mean += e;
      mean /= width;
    }
    for (const e of row) v += (e - mean) ** 2;
    const rstd = 1 / Math.sqrt(v / width + eps);
    for (let j = 0; j < width; j++) out[r * width + j] = (row[j] - mean) * rstd * g[j] + (b ? b[j] : 0);
  }
  return out;
}

/**
 * The largest excess of |got − want| over the tolerance times `scale` (≤ 0: within it), and the largest
 * |got − want|.
 */
function excess(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  scale = 1,
): { over: number; maxAbs: number } {
  let over = -Infinity, maxAbs = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= Infinity)) return { over: Infinity, maxAbs: Infinity }; // NaN
    over = Math.max(over, d - scale * (ABS + REL * Math.abs(want[i])));
    maxAbs = Math.max(maxAbs, d);
  }
  return { over, maxAbs };
}

/**
 * Checks a fused result against the float64 answer and the stock one. The fused result must be within the
 * tolerance of float64, and within it of the stock result wherever the stock one is itself within it of
 * float64 (a large common offset costs the stock one-pass mean its digits). Where `illConditioned` (the
 * gradient of RMSNorm over a width of 1, which cancels in 1 − x̂² in any float32 arithmetic) it must only
 * be no further from float64 than the stock result.
 */
function judge(
  label: string,
  fused: ArrayLike<number>,
  stock: ArrayLike<number>,
  exact: ArrayLike<number>,
  scale = 1,
  illConditioned = false,
): void {
  const fusedErr = excess(fused, exact, scale), stockErr = excess(stock, exact, scale);
  if (illConditioned) {
    assert(
      fusedErr.maxAbs <= stockErr.maxAbs,
      `${label}: fused max |Δ| ${fusedErr.maxAbs} vs float64, worse than stock's ${stockErr.maxAbs}`,
    );
    return;
  }
  assert(fusedErr.over <= 0, `${label}: fused max |Δ| ${fusedErr.maxAbs} vs float64`);
  if (stockErr.over <= 0) {
    const vsStock = excess(fused, stock, scale);
    assert(vsStock.over <= 0, `${label}: fused vs stock max |Δ| ${vsStock.maxAbs}`);
  }
}

const WIDTHS = [1, 3, 64, 65, 768, 1000];
/** Rows and the leading shape laid over them: ranks 1, 2 and 3. */
const ROWS: [number, number[]][] = [[1, []], [7, [7]], [300, [3, 100]]];
const EPS = [1e-5, 1e-6, 0.1];

gpuTest(
  "fusedLayerNorm/fusedRmsNorm[webgpu]: forward equals the stock formulation over widths, rows, ranks, offsets, eps",
  async () => {
    await useBackend("webgpu");
    const before = tf.memory().numTensors;
    let seed = 1, n = 0;
    for (const width of WIDTHS) {
      for (const [, lead] of ROWS) {
        for (const offset of [0, 1000]) {
          const eps = EPS[n++ % EPS.length];
          const shape = [...lead, width];
          const x = tf.tidy(() => tf.add(tf.randomNormal(shape, 0, 1, "float32", seed++), offset));
          const g = tf.randomNormal([width], 1, 0.5, "float32", seed++);
          const b = tf.randomNormal([width], 0, 0.5, "float32", seed++);
          const [xs, gs, bs] = [await x.data(), await g.data(), await b.data()] as Float32Array[];
          const cases: [string, () => tf.Tensor | null, () => tf.Tensor, Float64Array][] = [
            [
              "layerNorm+bias",
              () => fusedLayerNorm(x, g, b, eps),
              () => stockLayerNorm(x, g, b, eps),
              exactNorm("layer", xs, width, gs, bs, eps),
            ],
            [
              "layerNorm",
              () => fusedLayerNorm(x, g, undefined, eps),
              () => stockLayerNorm(x, g, undefined, eps),
              exactNorm("layer", xs, width, gs, undefined, eps),
            ],
            [
              "rmsNorm",
              () => fusedRmsNorm(x, g, eps),
              () => stockRmsNorm(x, g, eps),
              exactNorm("rms", xs, width, gs, undefined, eps),
            ],
          ];
          for (const [name, fused, stock, exact] of cases) {
            const label = `${name} [${shape}] +${offset} eps ${eps}`;
            const y = fused(), s = stock();
            assert(y !== null, `${label}: the kernel declined`);
            assertEquals(y.shape, shape, `${label}: shape`);
            const got = await y.data(), ref = await s.data();
            tf.dispose([y, s]);
            judge(label, got, ref, exact);
          }
          tf.dispose([x, g, b]);
        }
      }
    }
    assertEquals(tf.memory().numTensors, before, "the forward leaked tensors");
  },
);

/** The analytic gradients in float64: dx, dgain, dbias (calculus on the formula, not the kernel's code). */
function exactGrads(
  kind: "layer" | "rms",
  x: Float32Array,
  width: number,
  g: Float32Array,
  dy: Float32Array,
  eps: number,
): Float64Array[] {
  const dx = new Float64Array(x.length), dg = new Float64Array(width), db = new Float64Array(width);
  for (let r = 0; r < x.length / width; r++) {
    const o = r * width;
    let mean = 0, v = 0, mgy = 0, mgyx = 0;
    if (kind === "layer") {
      for (let j = 0; j < width; j++) mean += x[o + j] / width;
    }
    for (let j = 0; j < width; j++) v += (x[o + j] - mean) ** 2 / width;
    const sigma = Math.sqrt(v + eps);
    const xhat = (j: number) => (x[o + j] - mean) / sigma;
    for (let j = 0; j < width; j++) {
      const gy = g[j] * dy[o + j];
      mgy += gy / width;
      mgyx += gy * xhat(j) / width;
      dg[j] += dy[o + j] * xhat(j);
      db[j] += dy[o + j];
    }
    if (kind === "rms") mgy = 0; // no centring: no mean(gy) term
    for (let j = 0; j < width; j++) dx[o + j] = (g[j] * dy[o + j] - mgy - xhat(j) * mgyx) / sigma;
  }
  return [dx, dg, db];
}

gpuTest(
  "fusedLayerNorm/fusedRmsNorm[webgpu]: dx, dgain, dbias equal float64 and tf.grads of the stock formulation",
  async () => {
    await useBackend("webgpu");
    const before = tf.memory().numTensors;
    let seed = 100, n = 0;
    for (const width of WIDTHS) {
      for (const [, lead] of ROWS) {
        for (const offset of [0, 1000]) {
          const eps = EPS[n++ % EPS.length];
          const shape = [...lead, width];
          const x = tf.tidy(() => tf.add(tf.randomNormal(shape, 0, 1, "float32", seed++), offset));
          const g = tf.randomNormal([width], 1, 0.5, "float32", seed++);
          const b = tf.randomNormal([width], 0, 0.5, "float32", seed++);
          const dy = tf.randomNormal(shape, 0, 1, "float32", seed++);
          const [xs, gs, dys] = [await x.data(), await g.data(), await dy.data()] as Float32Array[];
          const cases: [
            string,
            tf.Tensor[],
            (...t: tf.Tensor[]) => tf.Tensor,
            (...t: tf.Tensor[]) => tf.Tensor,
          ][] = [
            [
              "layerNorm+bias",
              [x, g, b],
              (xx, gg, bb) => fusedLayerNorm(xx, gg, bb, eps)!,
              (xx, gg, bb) => stockLayerNorm(xx, gg, bb, eps),
            ],
            [
              "layerNorm",
              [x, g],
              (xx, gg) => fusedLayerNorm(xx, gg, undefined, eps)!,
              (xx, gg) => stockLayerNorm(xx, gg, undefined, eps),
            ],
            [
              "rmsNorm",
              [x, g],
              (xx, gg) => fusedRmsNorm(xx, gg, eps)!,
              (xx, gg) => stockRmsNorm(xx, gg, eps),
            ],
          ];
          for (const [name, args, fused, stock] of cases) {
            const exact = exactGrads(name === "rmsNorm" ? "rms" : "layer", xs, width, gs, dys, eps);
            const got = tf.grads(fused)(args, dy), want = tf.grads(stock)(args, dy);
            for (const [i, part] of ["dx", "dgain", "dbias"].slice(0, args.length).entries()) {
              const label = `${name} ${part} [${shape}] +${offset} eps ${eps}`;
              assertEquals(got[i].shape, args[i].shape, label);
              const a = await got[i].data(), w = await want[i].data();
              // dgain and dbias sum over up to 300 rows: their tolerance grows with the row count's square root.
              const scale = part === "dx" ? 1 : Math.sqrt(x.size / width);
              judge(label, a, w, exact[i], scale, name === "rmsNorm" && width === 1 && part === "dx");
            }
            tf.dispose([...got, ...want]);
          }
          tf.dispose([x, g, b, dy]);
        }
      }
    }
    assertEquals(tf.memory().numTensors, before, "the gradients leaked tensors");
  },
);

gpuTest(
  "fusedLayerNorm/fusedRmsNorm[webgpu]: more rows than one dispatch dimension holds (65535)",
  async () => {
    await useBackend("webgpu");
    const rows = 66000, width = 3; // tfjs lays the workgroups out over x and y: the row index must follow
    const x = tf.randomNormal([rows, width], 0, 1, "float32", 21),
      g = tf.randomNormal([width], 1, 0.5, "float32", 22);
    const b = tf.randomNormal([width], 0, 0.5, "float32", 23);
    const [xs, gs, bs] = [await x.data(), await g.data(), await b.data()] as Float32Array[];
    const ln = fusedLayerNorm(x, g, b, 1e-5)!, rn = fusedRmsNorm(x, g, 1e-6)!;
    judge(
      "layerNorm 66000 rows",
      await ln.data(),
      await ln.data(),
      exactNorm("layer", xs, width, gs, bs, 1e-5),
    );
    judge(
      "rmsNorm 66000 rows",
      await rn.data(),
      await rn.data(),
      exactNorm("rms", xs, width, gs, undefined, 1e-6),
    );
    tf.dispose([x, g, b, ln, rn]);
  },
);

gpuTest(
  "norms take the fused kernel on webgpu (forward and training) and decline what it cannot do",
  async () => {
    await useBackend("webgpu");
    const x = tf.randomNormal([4, 8], 0, 1, "float32", 5), g = tf.ones([8]), b = tf.zeros([8]);
    fusedNormCalls(true);
    const ys = [
      layerNorm(x, g, b, 1e-5),
      layerNorm(x, g, undefined, 1e-5),
      rmsNorm(x, g, 1e-6),
      applyNorm("rmsnorm", x, g, undefined, 1e-6),
    ];
    assertEquals(fusedNormCalls(), 4);
    // Training goes through it: variableGrads over the gain and bias.
    const gv = tf.variable(tf.ones([8])), bv = tf.variable(tf.zeros([8]));
    const { value, grads } = tf.variableGrads(() =>
      tf.sum(tf.square(layerNorm(x, gv, bv, 1e-5))) as tf.Scalar
    );
    assertEquals(fusedNormCalls(), 5);
    assertEquals(Object.keys(grads).length, 2);
    // One kernel per norm in the profile (the stock composition lists 9 for LayerNorm, 6 for RMSNorm); the
    // customGrad wrapper is listed too, without a name.
    const prof = await tf.profile(() => layerNorm(x, g, b, 1e-5));
    tf.dispose(prof.result);
    assertEquals(prof.kernels.map((k) => k.name).filter((k) => k !== ""), ["CoherenceLayerNorm"]);
    fusedNormCalls(true);
    // Declined: a non-float32 input, a gain that is not [width], an empty input.
    assertEquals(fusedLayerNorm(tf.ones([2, 8], "int32"), g, b, 1e-5), null);
    assertEquals(fusedRmsNorm(x, tf.ones([1, 8]), 1e-5), null);
    assertEquals(fusedRmsNorm(x, tf.ones([4]), 1e-5), null);
    assertEquals(fusedRmsNorm(tf.zeros([0, 8]), g, 1e-5), null);
    assertEquals(fusedNormCalls(), 0);
    tf.dispose([x, g, b, gv, bv, value, ...ys, ...Object.values(grads)]);
  },
);

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test(`norms[${backend}]: no fused path; forward and gradients bit-identical to the stock formulation`, async () => {
    await useBackend(backend);
    fusedNormCalls(true);
    const x = tf.randomNormal([3, 5, 17], 0, 1, "float32", 9);
    const g = tf.randomNormal([17], 1, 0.5, "float32", 10), b = tf.randomNormal([17], 0, 0.5, "float32", 11);
    assertEquals(fusedLayerNorm(x, g, b, 1e-5), null);
    assertEquals(fusedRmsNorm(x, g, 1e-6), null);
    const pairs: [tf.Tensor[], (...t: tf.Tensor[]) => tf.Tensor, (...t: tf.Tensor[]) => tf.Tensor][] = [
      [
        [x, g, b],
        (xx, gg, bb) => layerNorm(xx, gg, bb, 1e-5),
        (xx, gg, bb) => stockLayerNorm(xx, gg, bb, 1e-5),
      ],
      [[x, g], (xx, gg) => rmsNorm(xx, gg, 1e-6), (xx, gg) => stockRmsNorm(xx, gg, 1e-6)],
    ];
    for (const [args, lib, stock] of pairs) {
      const y = lib(...args), s = stock(...args);
      assertEquals(await y.data(), await s.data());
      const gl = tf.grads(lib)(args), gs = tf.grads(stock)(args);
      for (let i = 0; i < args.length; i++) assertEquals(await gl[i].data(), await gs[i].data());
      tf.dispose([y, s, ...gl, ...gs]);
    }
    assertEquals(fusedNormCalls(), 0);
    tf.dispose([x, g, b]);
  });
}

gpuTest("fused norms[webgpu]: repeated forward + backward leaks no tensors", async () => {
  await useBackend("webgpu");
  const x = tf.randomNormal([6, 65], 0, 1, "float32", 12);
  const g = tf.randomNormal([65], 1, 0.5, "float32", 13), b = tf.randomNormal([65], 0, 0.5, "float32", 14);
  const step = async (): Promise<void> => {
    const y1 = layerNorm(x, g, b, 1e-5), y2 = rmsNorm(x, g, 1e-6);
    const gl = tf.grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => layerNorm(xx, gg, bb, 1e-5))([
      x,
      g,
      b,
    ]);
    const gr = tf.grads((xx: tf.Tensor, gg: tf.Tensor) => rmsNorm(xx, gg, 1e-6))([x, g]);
    await gr[0].data(); // let the queue drain like a training loop does
    tf.dispose([y1, y2, ...gl, ...gr]);
  };
  await step(); // the first call registers the kernels and compiles the pipelines
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) await step();
  assertEquals(tf.memory().numTensors, before, "forward + backward leaked tensors");
  tf.dispose([x, g, b]);
});
