/**
 * Names the process that wrote an ELF core file: its pid, executable name and command line, read from the
 * core's NT_PRPSINFO note (Linux, 64-bit little-endian). CI uses it to say which process of a test run
 * crashed, since glibc's heap-corruption report does not name it.
 *
 * ```sh
 * deno run -R tools/core_owner.ts core [core.1234 ...]
 * ```
 *
 * @module
 */

/** Who dumped a core. */
export interface CoreOwner {
  pid: number;
  /** Executable name as the kernel keeps it (at most 15 characters). */
  name: string;
  /** The first 80 bytes of the command line, arguments separated by spaces. */
  args: string;
}

const PT_NOTE = 4;
const NT_PRPSINFO = 3;
const ET_CORE = 4;

/**
 * Reads the owner of an ELF64 little-endian core file from its NT_PRPSINFO note; throws a message that
 * says what is wrong when `bytes` is not such a core.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { coreOwner } from "./core_owner.ts";
 * assert.throws(() => coreOwner(new Uint8Array(8)), /not an ELF file/);
 * ```
 */
export function coreOwner(bytes: Uint8Array): CoreOwner {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 64 || v.getUint32(0, false) !== 0x7f454c46) throw new Error("not an ELF file");
  if (bytes[4] !== 2 || bytes[5] !== 1) throw new Error("not a 64-bit little-endian ELF file");
  if (v.getUint16(16, true) !== ET_CORE) {
    throw new Error("an ELF file, but not a core dump (e_type is not ET_CORE)");
  }
  const phoff = Number(v.getBigUint64(32, true));
  const phentsize = v.getUint16(54, true), phnum = v.getUint16(56, true);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + 56 > bytes.length) {
      throw new Error("truncated core: a program header lies past the end of the file");
    }
    if (v.getUint32(ph, true) !== PT_NOTE) continue;
    const off = Number(v.getBigUint64(ph + 8, true)), size = Number(v.getBigUint64(ph + 32, true));
    let p = off;
    while (p + 12 <= Math.min(off + size, bytes.length)) {
      const namesz = v.getUint32(p, true), descsz = v.getUint32(p + 4, true), type = v.getUint32(p + 8, true);
      const desc = p + 12 + align4(namesz);
      if (type === NT_PRPSINFO && descsz >= 136 && desc + 136 <= bytes.length) {
        // struct elf_prpsinfo (x86_64 / aarch64): pid at 24, pr_fname[16] at 40, pr_psargs[80] at 56.
        return {
          pid: v.getInt32(desc + 24, true),
          name: cString(bytes.subarray(desc + 40, desc + 56)),
          args: cString(bytes.subarray(desc + 56, desc + 136)).trim(),
        };
      }
      p = desc + align4(descsz);
    }
  }
  throw new Error("core dump without an NT_PRPSINFO note (truncated, or not written by Linux)");
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return new TextDecoder().decode(end < 0 ? b : b.subarray(0, end));
}

if (import.meta.main) {
  if (Deno.args.length === 0) {
    console.error("Usage: deno run -R tools/core_owner.ts CORE [CORE ...]");
    Deno.exit(2);
  }
  let failed = false;
  for (const path of Deno.args) {
    try {
      const o = coreOwner(await Deno.readFile(path));
      console.log(`${path}: pid ${o.pid}, ${o.name}: ${o.args}`);
    } catch (e) {
      console.log(`${path}: ${(e as Error).message}`);
      failed = true;
    }
  }
  Deno.exit(failed ? 1 : 0);
}
