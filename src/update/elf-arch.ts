/**
 * Which CPU a native addon (`.node`) is built for, read from its first bytes (issue 14: a release
 * bundle carries the addons of one architecture; an x64 addon in an arm64 bundle would only fail on
 * the box, at the first `require`).
 *
 * Pure functions over the header bytes; `addonArchProblems` walks a tree and reads them.
 */
import type { Dirent } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';

/** Bytes of the file head `describeBinary` needs (the ELF identification and e_machine). */
export const BINARY_HEAD_BYTES = 20;

/** ELF e_machine values we name (System V ABI, elf.h). */
export const EM = { X86: 3, ARM: 40, X86_64: 62, AARCH64: 183, RISCV: 243 } as const;

/** What Node calls the architecture (process.arch), for the machines we name. */
const ARCH_BY_MACHINE: Record<number, string> = {
  [EM.X86]: 'ia32',
  [EM.ARM]: 'arm',
  [EM.X86_64]: 'x64',
  [EM.AARCH64]: 'arm64',
  [EM.RISCV]: 'riscv64',
};

export type BinaryInfo =
  | { format: 'elf'; machine: number; arch: string; bits: 32 | 64; littleEndian: boolean }
  | { format: 'mach-o' | 'pe' | 'unknown' };

/** Reads the format (and for ELF the machine) from the first bytes of a file. */
export function describeBinary(head: Uint8Array): BinaryInfo {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length >= 4 && b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46) {
    const cls = b[4];
    const data = b[5];
    if (b.length < BINARY_HEAD_BYTES || (cls !== 1 && cls !== 2) || (data !== 1 && data !== 2)) {
      return { format: 'unknown' };
    }
    const littleEndian = data === 1;
    // e_machine follows e_ident (16 bytes) and e_type (2), in the file's byte order.
    const machine = littleEndian ? b.readUInt16LE(18) : b.readUInt16BE(18);
    return {
      format: 'elf',
      machine,
      arch: ARCH_BY_MACHINE[machine] ?? `e_machine ${machine}`,
      bits: cls === 2 ? 64 : 32,
      littleEndian,
    };
  }
  if (b.length >= 4) {
    const magic = b.readUInt32BE(0);
    // 32/64-bit Mach-O in either byte order, and universal (fat) binaries.
    if ([0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe, 0xcafebabe].includes(magic)) {
      return { format: 'mach-o' };
    }
  }
  if (b.length >= 2 && b[0] === 0x4d && b[1] === 0x5a) return { format: 'pe' };
  return { format: 'unknown' };
}

/**
 * Why an addon with this head cannot load on `linux-<arch>` under Node's 64-bit little-endian
 * builds, or undefined when it can.
 */
export function addonArchProblem(head: Uint8Array, arch: 'x64' | 'arm64'): string | undefined {
  const info = describeBinary(head);
  if (info.format !== 'elf') return `not a Linux ELF binary (${info.format})`;
  const want = arch === 'x64' ? EM.X86_64 : EM.AARCH64;
  if (info.machine !== want || info.bits !== 64 || !info.littleEndian) {
    return `built for ${info.arch} (${info.bits}-bit ${info.littleEndian ? 'LE' : 'BE'}), not ${arch}`;
  }
  return undefined;
}

export async function readHead(file: string, n = BINARY_HEAD_BYTES): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Every regular `*.node` file under `root` (symlinks are not followed), as paths relative to it. */
export async function findAddons(root: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    const dirents: Dirent[] = await readdir(path.join(root, rel), { withFileTypes: true });
    for (const d of dirents) {
      const r = rel ? path.join(rel, d.name) : d.name;
      if (d.isDirectory()) await visit(r);
      else if (d.isFile() && d.name.endsWith('.node')) out.push(r);
    }
  };
  await visit('');
  return out.sort();
}

/** The addons under `root` that are not for `linux-<arch>`, each with the reason. */
export async function addonArchProblems(
  root: string,
  arch: 'x64' | 'arm64',
): Promise<{ file: string; problem: string }[]> {
  const problems: { file: string; problem: string }[] = [];
  for (const file of await findAddons(root)) {
    const problem = addonArchProblem(await readHead(path.join(root, file)), arch);
    if (problem) problems.push({ file, problem });
  }
  return problems;
}
