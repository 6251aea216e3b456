import { correlationInterval, type Interval, pairedDifference, relativeImprovement, type Verdict, verdictOf } from "@midtrain/metrics";
import { type BranchOutcome, reportedSft, type SftOutcome, selectBestLr } from "./aggregate.js";
import type { BranchPlan } from "./plan.js";

/** One of the paper's findings, measured in this run. Everything but `claim`/`paper`/`metric` comes from the data. */
export interface Finding {
  /** Stable id: the finding's kind and what it compares, e.g. `midtrain-vs-baseline:midtrain-code-20:code`. */
  id: string;
  kind: FindingKind;
  /** What this row tests, in words, with this run's names. */
  claim: string;
  /** The paper's statement it checks. */
  paper: string;
  /** The quantity, its unit and how it is paired; positive values agree with the paper. */
  metric: string;
  /** Point estimate and interval (positive = the paper's direction); null when the run cannot measure it. */
  interval: Interval | null;
  verdict: Verdict | "not measured";
  /** Why a finding is not measured, or what limits it (e.g. one seed). */
  note?: string;
}

export type FindingKind =
  | "midtrain-vs-baseline"
  | "midtrain-vs-cpt"
  | "forgetting-vs-cpt"
  | "domain-specificity"
  | "timing-earlier-better"
  | "timing-earlier-forgets-less"
  | "timing-over-weight"
  | "proximity-vs-gain";

export interface FindingsOptions {
  /** Which pretraining source each SFT domain matches (default: the source of the same name). */
  domainSource?: Record<string, string | undefined>;
  /** Interval coverage. Default 0.95. */
  confidence?: number;
}

const PAPER = {
  gain: "Midtraining lowers in-domain loss after SFT; most for code and math.",
  cpt: "Midtraining beats continued pretraining (100% specialised data) in in-domain loss after SFT.",
  forget: "Midtraining forgets the general distribution less than continued pretraining.",
  specific: "The gain is domain-specific: it shows on the SFT domain the midtraining data matches.",
  early: "Earlier introduction of the specialised data is better in-domain.",
  earlyForget: "Earlier introduction preserves general modelling better.",
  timing: "When the data is introduced matters more than its mixture weight.",
  proximity: "Proximity advantage correlates positively with the relative improvement (r about 0.5-0.87).",
};

type PerSeed = Map<number, { sft: number; general: number }>;

/**
 * The study's selection for each (branch, domain, pretraining seed): per SFT seed the LR with the
 * lowest SFT loss, then the mean over SFT seeds. Returns branch → domain → pretraining seed → values.
 */
function perSeedValues(sft: readonly SftOutcome[]): Map<string, Map<string, PerSeed>> {
  const best = selectBestLr(sft);
  const acc = new Map<string, { sft: number; general: number; n: number }>();
  for (const o of best.values()) {
    const key = `${o.branch}\u0000${o.domain}\u0000${o.pretrainSeed}`;
    const a = acc.get(key) ?? { sft: 0, general: 0, n: 0 };
    // Selected on validation, measured on test.
    a.sft += reportedSft(o).sft;
    a.general += reportedSft(o).general;
    a.n++;
    acc.set(key, a);
  }
  const out = new Map<string, Map<string, PerSeed>>();
  for (const [key, a] of acc) {
    const [branch, domain, seed] = key.split("\u0000");
    if (!out.has(branch)) out.set(branch, new Map());
    const byDomain = out.get(branch)!;
    if (!byDomain.has(domain)) byDomain.set(domain, new Map());
    byDomain.get(domain)!.set(Number(seed), { sft: a.sft / a.n, general: a.general / a.n });
  }
  return out;
}

/** Seeds present in every series, in ascending order. */
function commonSeeds(series: readonly (PerSeed | undefined)[]): number[] {
  if (!series.length || series.some((s) => !s)) return [];
  const [first, ...rest] = series as PerSeed[];
  return [...first.keys()].filter((k) => rest.every((s) => s.has(k))).sort((a, b) => a - b);
}

function measured(id: string, kind: FindingKind, claim: string, paper: string, metric: string, interval: Interval, direction: 1 | -1 = 1): Finding {
  const need = kind === "proximity-vs-gain" ? "4 points" : "2 pretraining seeds";
  const note = interval.lo === null ? `an interval needs at least ${need}; this run has ${interval.n}` : undefined;
  return { id, kind, claim, paper, metric, interval, verdict: verdictOf(interval, direction), ...(note ? { note } : {}) };
}

function notMeasured(id: string, kind: FindingKind, claim: string, paper: string, metric: string, note: string): Finding {
  return { id, kind, claim, paper, metric, interval: null, verdict: "not measured", note };
}

/**
 * States each of the paper's findings for this run as a paired comparison over pretraining seeds,
 * with an interval and a verdict computed from the numbers: `reproduced` only when the interval
 * excludes zero in the paper's direction. A finding the run's design cannot test is listed as
 * `not measured` with the reason (e.g. no CPT branch, no timing × weight grid).
 */
export function computeFindings(
  branches: readonly BranchPlan[],
  sft: readonly SftOutcome[],
  _before: readonly BranchOutcome[],
  proximity: Record<string, Record<string, number>> = {},
  options: FindingsOptions = {},
): Finding[] {
  const confidence = options.confidence ?? 0.95;
  const values = perSeedValues(sft);
  const domains = [...new Set(sft.map((o) => o.domain))].sort();
  const sourceNames = new Set(branches.map((b) => b.source).filter((s): s is string => Boolean(s)));
  const matchOf = (domain: string): string | undefined =>
    domain in (options.domainSource ?? {}) ? options.domainSource![domain] : sourceNames.has(domain) ? domain : undefined;
  const base = branches.find((b) => b.kind === "baseline");
  const mids = branches.filter((b) => b.kind === "midtrain" && !b.fromGrid && b.source);
  const cpts = branches.filter((b) => b.kind === "cpt" && b.source);
  const findings: Finding[] = [];
  const paired = (a: PerSeed, b: PerSeed, field: "sft" | "general"): Interval => {
    const seeds = commonSeeds([a, b]);
    return pairedDifference(
      seeds.map((s) => a.get(s)![field]),
      seeds.map((s) => b.get(s)![field]),
      { confidence },
    );
  };

  // 1. In-domain gain over the baseline, and 4. its domain specificity.
  for (const m of mids) {
    const domain = domains.find((d) => matchOf(d) === m.source);
    const id = `midtrain-vs-baseline:${m.name}:${domain ?? "-"}`;
    const claim = `${m.name} lowers ${domain ?? m.source} SFT loss vs ${base?.name ?? "the baseline"}`;
    const metric = "baseline SFT loss − midtrain SFT loss (nats), paired by pretraining seed";
    const baseDomain = base && domain ? values.get(base.name)?.get(domain) : undefined;
    const midDomain = domain ? values.get(m.name)?.get(domain) : undefined;
    if (!base) findings.push(notMeasured(id, "midtrain-vs-baseline", claim, PAPER.gain, metric, "the config has no baseline branch"));
    else if (!domain) findings.push(notMeasured(id, "midtrain-vs-baseline", claim, PAPER.gain, metric, `no SFT domain matches source '${m.source}'`));
    else if (!baseDomain || !midDomain || commonSeeds([baseDomain, midDomain]).length === 0)
      findings.push(notMeasured(id, "midtrain-vs-baseline", claim, PAPER.gain, metric, "no finished SFT runs for both branches"));
    else findings.push(measured(id, "midtrain-vs-baseline", claim, PAPER.gain, metric, paired(baseDomain, midDomain, "sft")));

    const sid = `domain-specificity:${m.name}`;
    const sclaim = `${m.name}'s gain is larger on ${domain ?? m.source} than on the other SFT domains`;
    const smetric = "gain on the matched domain − mean gain on the others (nats; gain = baseline − midtrain SFT loss), paired by seed";
    const others = domains.filter((d) => d !== domain);
    if (!base || !domain || !baseDomain || !midDomain)
      findings.push(notMeasured(sid, "domain-specificity", sclaim, PAPER.specific, smetric, "the matched-domain gain is not measured"));
    else if (!others.length) findings.push(notMeasured(sid, "domain-specificity", sclaim, PAPER.specific, smetric, "the run fine-tunes on one domain only"));
    else {
      const series = [baseDomain, midDomain, ...others.flatMap((d) => [values.get(base.name)?.get(d), values.get(m.name)?.get(d)])];
      const seeds = commonSeeds(series);
      if (!seeds.length) findings.push(notMeasured(sid, "domain-specificity", sclaim, PAPER.specific, smetric, "no seed has every domain finished"));
      else {
        const matched = seeds.map((s) => baseDomain.get(s)!.sft - midDomain.get(s)!.sft);
        const other = seeds.map(
          (s) => others.reduce((acc, d) => acc + values.get(base.name)!.get(d)!.get(s)!.sft - values.get(m.name)!.get(d)!.get(s)!.sft, 0) / others.length,
        );
        findings.push(measured(sid, "domain-specificity", sclaim, PAPER.specific, smetric, pairedDifference(matched, other, { confidence })));
      }
    }
  }

  // 2./3. Midtraining vs continued pretraining on the same source: in-domain loss and forgetting.
  for (const m of mids) {
    const c = cpts.find((x) => x.source === m.source);
    const domain = domains.find((d) => matchOf(d) === m.source);
    for (const [kind, field, paper, what] of [
      ["midtrain-vs-cpt", "sft", PAPER.cpt, "SFT loss"],
      ["forgetting-vs-cpt", "general", PAPER.forget, "general loss after SFT"],
    ] as const) {
      const id = `${kind}:${m.name}:${c?.name ?? "-"}`;
      const claim = `${m.name} has lower ${what} than ${c?.name ?? `CPT on ${m.source}`}${domain ? ` (${domain} SFT)` : ""}`;
      const metric = `CPT ${what} − midtrain ${what} (nats), paired by pretraining seed`;
      const a = c && domain ? values.get(c.name)?.get(domain) : undefined;
      const b = domain ? values.get(m.name)?.get(domain) : undefined;
      if (!c) findings.push(notMeasured(id, kind, claim, paper, metric, `the config has no cpt branch on '${m.source}'`));
      else if (!domain) findings.push(notMeasured(id, kind, claim, paper, metric, `no SFT domain matches source '${m.source}'`));
      else if (!a || !b || commonSeeds([a, b]).length === 0)
        findings.push(notMeasured(id, kind, claim, paper, metric, "no finished SFT runs for both branches"));
      else findings.push(measured(id, kind, claim, paper, metric, paired(a, b, field)));
    }
  }

  // 5. Timing × weight, from the ablation grid.
  const grid = branches.filter((b) => b.inGrid && b.source && b.weight !== undefined);
  const gridSource = grid[0]?.source;
  const gridDomain = gridSource ? domains.find((d) => matchOf(d) === gridSource) : undefined;
  const starts = [...new Set(grid.map((b) => b.startStep))].sort((a, b) => a - b);
  const weights = [...new Set(grid.map((b) => b.weight!))].sort((a, b) => a - b);
  const timingClaims: [FindingKind, string, string, string][] = [
    [
      "timing-earlier-better",
      `the earliest start beats the latest in ${gridDomain ?? "in-domain"} SFT loss`,
      PAPER.early,
      "SFT loss at the latest start − at the earliest (nats, mean over weights), paired by seed",
    ],
    [
      "timing-earlier-forgets-less",
      "the earliest start keeps lower general loss after SFT than the latest",
      PAPER.earlyForget,
      "general loss after SFT at the latest start − at the earliest (nats, mean over weights), paired by seed",
    ],
    [
      "timing-over-weight",
      "the SFT loss varies more across start steps than across weights",
      PAPER.timing,
      "range of SFT loss over starts (mean over weights) − range over weights (mean over starts), nats, paired by seed",
    ],
  ];
  const cell = (start: number, weight: number) => {
    const b = grid.find((x) => x.startStep === start && x.weight === weight);
    return b && gridDomain ? values.get(b.name)?.get(gridDomain) : undefined;
  };
  const cells = starts.flatMap((s) => weights.map((w) => cell(s, w)));
  const gridSeeds = commonSeeds(cells);
  for (const [kind, claim, paper, metric] of timingClaims) {
    const id = `${kind}:${gridSource ?? "-"}`;
    if (!grid.length) findings.push(notMeasured(id, kind, claim, paper, metric, "the config has no ablation grid (ablation: starts × weights)"));
    else if (starts.length < 2 || (kind === "timing-over-weight" && weights.length < 2))
      findings.push(notMeasured(id, kind, claim, paper, metric, `the grid needs at least 2 starts${kind === "timing-over-weight" ? " and 2 weights" : ""}`));
    else if (!gridDomain) findings.push(notMeasured(id, kind, claim, paper, metric, `no SFT domain matches the grid's source '${gridSource}'`));
    else if (!gridSeeds.length) findings.push(notMeasured(id, kind, claim, paper, metric, "no seed has every grid cell finished"));
    else {
      const field = kind === "timing-earlier-forgets-less" ? "general" : "sft";
      const meanOverWeights = (start: number, s: number) => weights.reduce((acc, w) => acc + cell(start, w)!.get(s)![field], 0) / weights.length;
      const meanOverStarts = (weight: number, s: number) => starts.reduce((acc, st) => acc + cell(st, weight)!.get(s)![field], 0) / starts.length;
      const range = (xs: number[]) => Math.max(...xs) - Math.min(...xs);
      const a =
        kind === "timing-over-weight"
          ? gridSeeds.map((s) => range(starts.map((st) => meanOverWeights(st, s))))
          : gridSeeds.map((s) => meanOverWeights(starts[starts.length - 1], s));
      const b =
        kind === "timing-over-weight"
          ? gridSeeds.map((s) => range(weights.map((w) => meanOverStarts(w, s))))
          : gridSeeds.map((s) => meanOverWeights(starts[0], s));
      findings.push(measured(id, kind, claim, paper, metric, pairedDifference(a, b, { confidence })));
    }
  }

  // 6. Proximity advantage vs relative improvement, over (midtrain branch, domain) points.
  {
    const id = "proximity-vs-gain";
    const claim = "branches whose data is closer to the SFT data gain more";
    const metric = "Pearson r between proximity advantage and relative improvement over (midtrain branch, SFT domain) points, Fisher-z interval";
    const xs: number[] = [];
    const ys: number[] = [];
    if (base)
      for (const b of branches.filter((x) => x.kind === "midtrain"))
        for (const d of domains) {
          const pa = proximity[b.name]?.[d];
          const mine = values.get(b.name)?.get(d);
          const theirs = values.get(base.name)?.get(d);
          if (pa === undefined || !mine || !theirs) continue;
          const seeds = commonSeeds([mine, theirs]);
          if (!seeds.length) continue;
          const mean = (m: PerSeed) => seeds.reduce((acc, s) => acc + m.get(s)!.sft, 0) / seeds.length;
          xs.push(pa);
          ys.push(relativeImprovement(mean(theirs), mean(mine)));
        }
    const varied = (v: number[]) => v.some((x) => x !== v[0]);
    if (xs.length < 2 || !varied(xs) || !varied(ys))
      findings.push(notMeasured(id, "proximity-vs-gain", claim, PAPER.proximity, metric, `needs at least 2 varying points; this run has ${xs.length}`));
    else findings.push(measured(id, "proximity-vs-gain", claim, PAPER.proximity, metric, correlationInterval(xs, ys, { confidence })));
  }
  return findings;
}

/**
 * Warnings for selected learning rates at an edge of the LR grid (a grid of 2 or more values):
 * the optimum may lie outside the grid, so differences between branches partly measure the grid.
 * One line per (branch, domain) whose selection hit an edge, naming how many seeds did.
 */
export function lrGridWarnings(sft: readonly SftOutcome[], lrGrid: readonly number[]): string[] {
  if (lrGrid.length < 2) return [];
  const lo = Math.min(...lrGrid);
  const hi = Math.max(...lrGrid);
  const best = selectBestLr(sft);
  const edges = new Map<string, { top: number; bottom: number; n: number }>();
  for (const o of best.values()) {
    const key = `${o.branch}\u0000${o.domain}`;
    const e = edges.get(key) ?? { top: 0, bottom: 0, n: 0 };
    e.n++;
    if (o.lr === hi) e.top++;
    if (o.lr === lo) e.bottom++;
    edges.set(key, e);
  }
  const out: string[] = [];
  for (const [key, e] of edges) {
    const [branch, domain] = key.split("\u0000");
    for (const [count, where, lr] of [
      [e.top, "top", hi],
      [e.bottom, "bottom", lo],
    ] as const)
      if (count > 0)
        out.push(
          `LR grid edge: ${branch} on ${domain} selected the ${where} of the grid (${lr}) in ${count} of ${e.n} runs; the best LR may lie outside sft.lrGrid`,
        );
  }
  return out;
}
