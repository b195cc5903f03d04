import { setWasmPaths, tf } from "/work/main/lib/deps.ts";
import "npm:@tensorflow/tfjs-backend-wasm@4.22.0";
const wasm = await import("npm:@tensorflow/tfjs-backend-wasm@4.22.0");
console.log("navigator.hardwareConcurrency", navigator.hardwareConcurrency);
tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
try {
  (wasm as any).setThreadsCount?.(2);
  const ok = await tf.setBackend("wasm");
  await tf.ready();
  console.log("setBackend", ok, tf.getBackend(), "threads", (wasm as any).getThreadsCount?.());
  const a = tf.randomNormal([512, 512]);
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) tf.matMul(a, a).dataSync();
  console.log("ms/matmul", (performance.now() - t0) / 10);
} catch (e) {
  console.log("ERR", String(e).slice(0, 400));
}
