// Output buffers for small and medium SFrames, carved from one sender's own slab. A fresh ArrayBuffer
// per frame costs 0.4–0.8 µs (a tenth of a 120-byte frame's budget) plus GC accounting; Node's shared
// Buffer pool would be as fast but mixes our frames with whatever else the process pooled (hex-decoded
// keys, say) behind `.buffer`. A slab here is zero-filled when made and only ever holds this sender's
// ciphertext, which goes on the wire anyway. Frames are handed out in order, so a consumer keeping
// the last N frames pins only about N × frame size / slab size slabs.

const SLAB_BYTES = 256 * 1024;
/** Larger frames get an ArrayBuffer of their own (the allocation is small next to the AES work). */
const MAX_SLAB_FRAME = 16 * 1024;

export class FrameSlab {
  private slab = new ArrayBuffer(0);
  private used = 0;

  /** `length` uninitialised bytes; the caller overwrites all of them. */
  take(length: number): Buffer {
    if (length > MAX_SLAB_FRAME) return Buffer.allocUnsafeSlow(length);
    if (this.used + length > this.slab.byteLength) {
      this.slab = new ArrayBuffer(SLAB_BYTES);
      this.used = 0;
    }
    const out = Buffer.from(this.slab, this.used, length);
    // Keep 8-byte alignment so typed-array views over a frame stay possible.
    this.used += (length + 7) & ~7;
    return out;
  }
}
