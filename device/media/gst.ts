// A long-lived GStreamer pipeline over gstreamer-superficial, with the binding's traps handled in
// one place (../shared/DESIGN.md): appsink pulls start only once playing (a pull before play returns
// null at once); each element is looked up once (findChild leaks per call); the bus is polled while
// playing and errors name their element; stop() turns off auto-flush-bus first so the pending bus
// poll returns and the process can exit.
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { elementInParseError } from './templates.js';

/** The part of the binding we use (it ships no types). */
export interface GstElement {
  [property: string]: unknown;
  pull?(cb: (buf: Buffer | null, caps: Record<string, unknown>) => void): void;
  push?(buf: Buffer, pts?: Buffer): void;
}
interface GstPipeline {
  play(): void;
  stop(): void;
  findChild(name: string): GstElement | undefined;
  forceKeyUnit(name: string, count: number): boolean;
  pollBus(cb: (msg: Record<string, unknown>) => void): void;
  'auto-flush-bus': boolean;
  latency: number;
}
type PipelineCtor = new (launch: string) => GstPipeline;

const require = createRequire(import.meta.url);
let binding: { Pipeline: PipelineCtor } | undefined;
function gst(): { Pipeline: PipelineCtor } {
  binding ??= require('gstreamer-superficial') as { Pipeline: PipelineCtor };
  return binding;
}

export class PipelineError extends Error {
  override name = 'PipelineError';
  constructor(
    readonly pipeline: string,
    readonly detail: string,
    readonly element?: string,
  ) {
    super(`${pipeline}: ${element ? `element "${element}": ` : ''}${detail}`);
  }
}

export interface PipelineEvents {
  error: [PipelineError];
  eos: [];
}

export class LivePipeline extends EventEmitter<PipelineEvents> {
  readonly #pipeline: GstPipeline;
  readonly #elements = new Map<string, GstElement>();
  readonly #sinks = new Map<string, (buf: Buffer) => void>();
  #playing = false;
  /** Set before start() for pipelines with a live aggregator (compositor, audiomixer). */
  latencySeconds: number | undefined;
  /** A bus poll is queued in the binding (it ends by itself after a message once the state is NULL). */
  #polling = false;

  constructor(
    readonly name: string,
    launch: string,
  ) {
    super();
    try {
      this.#pipeline = new (gst().Pipeline)(launch);
    } catch (err) {
      const message = (err as Error).message;
      throw new PipelineError(name, message, elementInParseError(message));
    }
  }

  get playing(): boolean {
    return this.#playing;
  }

  element(name: string): GstElement {
    let el = this.#elements.get(name);
    if (!el) {
      el = this.#pipeline.findChild(name);
      if (!el) throw new PipelineError(this.name, 'no such element in the pipeline', name);
      this.#elements.set(name, el);
    }
    return el;
  }

  has(name: string): boolean {
    try {
      this.element(name);
      return true;
    } catch {
      return false;
    }
  }

  /** Registers a consumer for an appsink's buffers; pulling runs while the pipeline plays. */
  onSample(sink: string, consume: (buf: Buffer) => void): void {
    this.element(sink);
    this.#sinks.set(sink, consume);
  }

  push(src: string, buf: Buffer): void {
    this.element(src).push?.(buf);
  }

  set(element: string, property: string, value: string | number | boolean): void {
    this.element(element)[property] = value;
  }

  /** Asks the encoder upstream of `element`'s sink pad for a keyframe. */
  forceKeyUnit(element: string): void {
    this.element(element);
    this.#pipeline.forceKeyUnit(element, 1);
  }

  start(): void {
    if (this.#playing) return;
    this.#pipeline['auto-flush-bus'] = true;
    // A fixed pipeline latency: the binding does not handle LATENCY messages (as gst-launch does by
    // recalculating), and a live compositor/audiomixer whose first latency query failed can stall.
    if (this.latencySeconds !== undefined) this.#pipeline.latency = this.latencySeconds;
    this.#pipeline.play();
    this.#playing = true;
    if (!this.#polling) {
      this.#polling = true;
      this.#pipeline.pollBus((msg) => this.#onBus(msg));
    }
    for (const [sink, consume] of this.#sinks) this.#pull(sink, consume);
  }

  stop(): void {
    if (!this.#playing) return;
    this.#playing = false;
    this.#pipeline['auto-flush-bus'] = false;
    this.#pipeline.stop();
  }

  #pull(sink: string, consume: (buf: Buffer) => void): void {
    const el = this.element(sink);
    const next = (buf: Buffer | null) => {
      if (!buf || !this.#playing) return;
      try {
        consume(buf);
      } finally {
        if (this.#playing) el.pull?.(next);
      }
    };
    el.pull?.(next);
  }

  #onBus(msg: Record<string, unknown>): void {
    // The binding re-queues the poll unless the pipeline is in NULL; its last message arrives after stop().
    if (!this.#playing) this.#polling = false;
    // Error messages: type 'error', name = the element's path, message = the GError text.
    if (msg.type === 'error' && typeof msg.message === 'string') {
      const element = String(msg._src_element_name ?? '') || undefined;
      this.emit('error', new PipelineError(this.name, msg.message, element));
    } else if (msg.type === 'eos') {
      this.emit('eos');
    }
  }
}
