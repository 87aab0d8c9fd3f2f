// Counters, gauges and histograms for GET /metrics, written in the Prometheus text exposition format (0.0.4):
// requests by route and status, request latency, batch sizes, generated tokens and tokens/s, queue depth.
// No dependency: a few maps keyed by label values.

type Labels = Record<string, string>;

const escapeLabel = (value: string): string => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labelText = (labels: Labels): string => {
  const entries = Object.entries(labels);
  return entries.length ? `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
};
const keyOf = (labels: Labels): string => JSON.stringify(Object.entries(labels));
const formatNumber = (n: number): string => (Number.isFinite(n) ? String(n) : n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN');

interface Metric {
  render(): string;
}

export class Counter implements Metric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = keyOf(labels);
    const entry = this.values.get(key);
    if (entry) entry.value += by;
    else this.values.set(key, { labels, value: by });
  }

  get(labels: Labels = {}): number {
    return this.values.get(keyOf(labels))?.value ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.values.values())
      lines.push(`${this.name}${labelText(labels)} ${formatNumber(value)}`);
    return lines.join('\n');
  }
}

/** A gauge whose values are read when the metrics are rendered. */
export class Gauge implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => { labels: Labels; value: number }[],
  ) {}

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const { labels, value } of this.read()) lines.push(`${this.name}${labelText(labels)} ${formatNumber(value)}`);
    return lines.join('\n');
  }
}

export class Histogram implements Metric {
  private readonly values = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {}

  observe(value: number, labels: Labels = {}): void {
    const key = keyOf(labels);
    let entry = this.values.get(key);
    if (!entry) {
      entry = { labels, counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.values.set(key, entry);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) entry.counts[i]++;
    entry.sum += value;
    entry.count++;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const { labels, counts, sum, count } of this.values.values()) {
      this.buckets.forEach((bound, i) =>
        lines.push(`${this.name}_bucket${labelText({ ...labels, le: String(bound) })} ${counts[i]}`),
      );
      lines.push(`${this.name}_bucket${labelText({ ...labels, le: '+Inf' })} ${count}`);
      lines.push(`${this.name}_sum${labelText(labels)} ${formatNumber(sum)}`);
      lines.push(`${this.name}_count${labelText(labels)} ${count}`);
    }
    return lines.join('\n');
  }
}

/** Events per second over a sliding window (e.g. generated tokens/s). */
export class RateMeter {
  private readonly slots: number[];
  private readonly slotMs: number;
  private slotStart = 0;
  private current = 0;

  constructor(windowSeconds = 10, slots = 10) {
    this.slots = new Array(slots).fill(0);
    this.slotMs = (windowSeconds * 1000) / slots;
  }

  add(count: number, now = Date.now()): void {
    this.advance(now);
    this.slots[this.current] += count;
  }

  /** Mean rate over the window. */
  perSecond(now = Date.now()): number {
    this.advance(now);
    const total = this.slots.reduce((a, b) => a + b, 0);
    return total / ((this.slots.length * this.slotMs) / 1000);
  }

  private advance(now: number): void {
    if (this.slotStart === 0) this.slotStart = now;
    const steps = Math.floor((now - this.slotStart) / this.slotMs);
    if (steps <= 0) return;
    for (let i = 0; i < Math.min(steps, this.slots.length); i++) {
      this.current = (this.current + 1) % this.slots.length;
      this.slots[this.current] = 0;
    }
    this.slotStart += steps * this.slotMs;
  }
}

export class MetricsRegistry {
  private readonly metrics: Metric[] = [];

  add<T extends Metric>(metric: T): T {
    this.metrics.push(metric);
    return metric;
  }

  render(): string {
    return this.metrics.map((m) => m.render()).join('\n') + '\n';
  }
}

/** The service's metrics; model-level gauges are read from the live models at render time. */
export class ServiceMetrics {
  readonly registry = new MetricsRegistry();
  readonly requests = this.registry.add(
    new Counter('modelwright_http_requests_total', 'HTTP requests by route, method and status code.'),
  );
  readonly latency = this.registry.add(
    new Histogram(
      'modelwright_http_request_duration_seconds',
      'HTTP request latency (to the last byte, streams included).',
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    ),
  );
  readonly promptTokens = this.registry.add(
    new Counter('modelwright_prompt_tokens_total', 'Prompt tokens run, by model.'),
  );
  readonly cachedPromptTokens = this.registry.add(
    new Counter(
      'modelwright_prompt_tokens_cached_total',
      'Prompt tokens whose keys and values came from the prompt cache instead of a run, by model.',
    ),
  );
  readonly generatedTokens = this.registry.add(
    new Counter('modelwright_generated_tokens_total', 'Tokens generated, by model.'),
  );
  readonly batchSize = this.registry.add(
    new Histogram('modelwright_batch_size', 'Sequences per decode step, by model.', [1, 2, 4, 8, 16, 32, 64]),
  );
  readonly rejected = this.registry.add(
    new Counter('modelwright_rejected_requests_total', 'Requests refused before running, by model and reason.'),
  );
  private readonly tokenRates = new Map<string, RateMeter>();

  constructor(liveModels: () => { name: string; queueDepth: number; active: number; ready: boolean }[]) {
    this.registry.add(
      new Gauge(
        'modelwright_generated_tokens_per_second',
        'Generated tokens per second over the last 10 s, by model.',
        () => [...this.tokenRates].map(([model, meter]) => ({ labels: { model }, value: meter.perSecond() })),
      ),
    );
    this.registry.add(
      new Gauge('modelwright_queue_depth', 'Requests waiting to run, by model (all versions).', () =>
        liveModels().map((m) => ({ labels: { model: m.name }, value: m.queueDepth })),
      ),
    );
    this.registry.add(
      new Gauge('modelwright_active_sequences', 'Sequences being decoded, by model (all versions).', () =>
        liveModels().map((m) => ({ labels: { model: m.name }, value: m.active })),
      ),
    );
    this.registry.add(
      new Gauge('modelwright_model_ready', '1 when the model accepts requests.', () =>
        liveModels().map((m) => ({ labels: { model: m.name }, value: m.ready ? 1 : 0 })),
      ),
    );
  }

  tokensGenerated(model: string, count: number): void {
    this.generatedTokens.inc({ model }, count);
    let meter = this.tokenRates.get(model);
    if (!meter) this.tokenRates.set(model, (meter = new RateMeter()));
    meter.add(count);
  }
}
