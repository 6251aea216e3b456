import { describe, expect, it } from "vitest";
import * as lib from "../src/index.js";
import {
  ByteTokenizer,
  createMixer,
  DataConfigError,
  EmptySourceError,
  EpochLimitError,
  InvalidWeightsError,
  type MixtureScheduleLike,
  packPretrain,
  type PackedSource,
  type TrainingTime,
  UnknownSourceError,
} from "../src/index.js";
import { BATCH, drawSteps, makeMixer, SEQ_LEN, switchSchedule, time } from "./fixtures/mixer-fixture.mjs";

const tok = new ByteTokenizer();
const t0: TrainingTime = { step: 0, tokens: 0, phase: "pretrain", phaseStep: 0, phaseSteps: 10, phaseFraction: 0 };

/** A source whose every byte is `ch`, so a row's origin can be read off its tokens. */
function mono(ch: string, seqLen = 8, docs = 20, len = 50): PackedSource {
  return packPretrain(
    Array.from({ length: docs }, () => ch.repeat(len)),
    tok,
    { seqLen },
  );
}

describe("mixer: sampling follows the schedule", () => {
  it("empirical fractions are within 4.5 binomial sigma of the weights, before and after a switch", () => {
    const sources = { a: mono("a"), b: mono("b"), c: mono("c") };
    const before = { a: 0.7, b: 0.3 };
    const after = { a: 0.2, b: 0.5, c: 0.3 };
    const schedule: MixtureScheduleLike = { sources: ["a", "b", "c"], at: (t) => (t.step < 100 ? before : after) };
    const mixer = createMixer({ sources, schedule, seed: 9 });
    const count = (from: number, to: number) => {
      const n: Record<string, number> = { a: 0, b: 0, c: 0 };
      for (let s = from; s < to; s++) {
        const batch = mixer.nextBatch(100, { ...t0, step: s });
        batch.sources.forEach((name, r) => {
          n[name]++;
          // The row really holds that source's tokens (bytes of the letter, or EOS).
          const row = batch.inputs.subarray(r * 8, r * 8 + 8);
          expect(row.every((id) => id === name.charCodeAt(0) || id === tok.eosId)).toBe(true);
        });
      }
      return n;
    };
    const check = (n: Record<string, number>, w: Record<string, number>, total: number) => {
      for (const k of Object.keys(n)) {
        const p = w[k] ?? 0;
        const sigma = Math.sqrt(total * p * (1 - p));
        if (p === 0) expect(n[k]).toBe(0);
        else expect(Math.abs(n[k] - total * p)).toBeLessThan(4.5 * sigma);
      }
    };
    check(count(0, 100), before, 10_000);
    check(count(100, 200), after, 10_000);
  });

  it("is deterministic from the seed and differs across seeds", () => {
    const a = drawSteps(makeMixer(lib), 45, 10);
    const b = drawSteps(makeMixer(lib), 45, 10);
    expect(b).toEqual(a);
    // Not trivially equal: the ten batches of the stream all differ from one another.
    expect(new Set(a.map((batch: { inputs: number[] }) => batch.inputs.join(","))).size).toBe(10);
    const s = createMixer({ sources: { x: mono("x") }, schedule: { x: 1 }, seed: 1 });
    const s2 = createMixer({ sources: { x: mono("x") }, schedule: { x: 1 }, seed: 2 });
    expect(s.nextBatch(5, t0).indices).not.toEqual(s2.nextBatch(5, t0).indices);
  });

  it("serves every sequence of a source once per epoch in a shuffled order that changes per epoch", () => {
    const src = packPretrain(["abcdefghijklmnopqrstuvwxyz".repeat(4)], tok, { seqLen: 4 }); // 104+1 tokens → 26 blocks
    expect(src.numSequences).toBe(26);
    const m = createMixer({ sources: { s: src }, schedule: { s: 1 }, seed: 5 });
    const e1 = m.nextBatch(26, t0).indices;
    const e2 = m.nextBatch(26, t0).indices;
    expect([...e1].sort((x, y) => x - y)).toEqual(Array.from({ length: 26 }, (_, i) => i));
    expect([...e2].sort((x, y) => x - y)).toEqual(Array.from({ length: 26 }, (_, i) => i));
    expect(e2).not.toEqual(e1);
    expect(e1).not.toEqual(Array.from({ length: 26 }, (_, i) => i));
    const st = m.stats().s;
    expect(st).toMatchObject({ epoch: 2, cursor: 0, sequences: 52, tokens: 52 * 4, lossTokens: 52 * 4, epochs: 2 });
  });

  it("counts tokens, loss tokens and fractional epochs per source", () => {
    const m = makeMixer(lib);
    drawSteps(m, 0, 60);
    const st = m.stats();
    const seqs = st.general.sequences + st.code.sequences + st.qa.sequences;
    expect(seqs).toBe(60 * BATCH);
    expect(st.general.tokens).toBe(st.general.sequences * SEQ_LEN);
    expect(st.general.lossTokens).toBe(st.general.tokens); // pretraining: every position is a target
    expect(st.qa.lossTokens).toBeLessThan(st.qa.tokens); // SFT: prompts and padding masked
    expect(st.code.epochs).toBeCloseTo(st.code.epoch + st.code.cursor / st.code.numSequences, 12);
    expect(st.code.epochs * st.code.numSequences).toBeCloseTo(st.code.sequences, 9);
  });
});

describe("mixer: state and resume", () => {
  it("does not depend on the order in which sources are listed", () => {
    const a = mono("a");
    const b = mono("b");
    const c = mono("c");
    const w = { a: 0.2, b: 0.3, c: 0.5 };
    const m1 = createMixer({ sources: { a, b, c }, schedule: w, seed: 4 });
    const m2 = createMixer({ sources: { c, a, b }, schedule: { c: 0.5, b: 0.3, a: 0.2 }, seed: 4 });
    const x = m1.nextBatch(64, t0);
    const y = m2.nextBatch(64, t0);
    expect(y.sources).toEqual(x.sources);
    expect(Array.from(y.inputs)).toEqual(Array.from(x.inputs));
    m2.setState(m1.getState());
    expect(m2.nextBatch(16, t0).indices).toEqual(m1.nextBatch(16, t0).indices);
  });

  it("a brand-new mixer given the saved JSON state yields the same next 1,000 sequences, across the switch", () => {
    const m = makeMixer(lib);
    drawSteps(m, 0, 20); // 200 sequences, general only
    const saved = JSON.stringify(m.getState());
    const expected = drawSteps(m, 20, 100); // steps 20..119: 1,000 sequences, switch at step 50
    expect(new Set(expected.flatMap((b) => b.sources))).toEqual(new Set(["general", "code", "qa"]));
    const fresh = makeMixer(lib); // rebuilt from scratch: new sources, new schedule object
    fresh.setState(JSON.parse(saved));
    expect(drawSteps(fresh, 20, 100)).toEqual(expected);
    expect(fresh.stats()).toEqual(m.stats());
  });

  it("state is plain JSON with RNG, per-source cursor/epoch/tokens", () => {
    const m = makeMixer(lib);
    drawSteps(m, 0, 200);
    const s = m.getState();
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
    expect(s.rng).toHaveLength(4);
    expect(Object.keys(s.sources)).toEqual(["code", "general", "qa"]);
    expect(s.sources.code.epoch).toBeGreaterThan(0); // ~250 code blocks, ~450 drawn by step 200
  });

  it("saves and restores a stateful schedule's state", () => {
    let calls = 0;
    const mk = (): MixtureScheduleLike & { w: number } => {
      const sch = {
        w: 0.5,
        stateful: true,
        sources: ["a", "b"],
        at: () => ({ a: sch.w, b: 1 - sch.w }),
        getState: () => ({ w: sch.w }),
        setState: (s: unknown) => {
          calls++;
          sch.w = (s as { w: number }).w;
        },
      };
      return sch;
    };
    const s1 = mk();
    const m = createMixer({ sources: { a: mono("a"), b: mono("b") }, schedule: s1, seed: 1 });
    s1.w = 0.9;
    const st = m.getState();
    expect(st.schedule).toEqual({ w: 0.9 });
    const s2 = mk();
    const m2 = createMixer({ sources: { a: mono("a"), b: mono("b") }, schedule: s2, seed: 1 });
    m2.setState(st);
    expect(s2.w).toBe(0.9);
    expect(calls).toBe(1);
  });

  it("refuses a state from another seed or other data", () => {
    const m = makeMixer(lib);
    const st = m.getState();
    const other = createMixer({ sources: { general: mono("g") }, schedule: { general: 1 }, seed: 2024 });
    expect(() => other.setState(st)).toThrow(UnknownSourceError);
    const wrongSeed = { ...st, seed: 1 };
    expect(() => makeMixer(lib).setState(wrongSeed)).toThrow(/seed/);
    const wrongSize = JSON.parse(JSON.stringify(st));
    wrongSize.sources.code.numSequences += 1;
    expect(() => makeMixer(lib).setState(wrongSize)).toThrow(/rebuild the source/);
    expect(() => makeMixer(lib).setState({ version: 2 } as never)).toThrow(DataConfigError);
  });
});

describe("mixer: bad input", () => {
  const sources = { a: mono("a"), b: mono("b") };
  it("negative, non-finite and all-zero weights are clear errors", () => {
    expect(() => createMixer({ sources, schedule: { a: -1, b: 2 } })).toThrow(/'a' is -1.*>= 0/);
    expect(() => createMixer({ sources, schedule: { a: 0, b: 0 } })).toThrow(InvalidWeightsError);
    expect(() => createMixer({ sources, schedule: { a: Number.NaN } })).toThrow(InvalidWeightsError);
    const later: MixtureScheduleLike = { at: (t): Record<string, number> => (t.step < 1 ? { a: 1 } : { a: 0, b: 0 }) };
    const m = createMixer({ sources, schedule: later });
    m.nextBatch(2, t0);
    expect(() => m.nextBatch(2, { ...t0, step: 1 })).toThrow(/all zero/);
  });

  it("a mixture naming an unknown source is a clear error, up front and at a later switch", () => {
    expect(() => createMixer({ sources, schedule: { a: 1, cod: 1 } })).toThrow(/unknown source 'cod'.*'a', 'b'/);
    expect(() => createMixer({ sources, schedule: { sources: ["a", "zz"], at: () => ({ a: 1 }) } })).toThrow(UnknownSourceError);
    const m = createMixer({ sources, schedule: { at: (t): Record<string, number> => (t.step < 5 ? { a: 1 } : { a: 1, math: 1 }) } });
    m.nextBatch(1, t0);
    expect(() => m.nextBatch(1, { ...t0, step: 5 })).toThrow(/unknown source 'math'/);
  });

  it("no sources, mismatched seqLen, bad batch size", () => {
    expect(() => createMixer({ sources: {}, schedule: {} })).toThrow(EmptySourceError);
    const long = packPretrain(["x".repeat(100)], tok, { seqLen: 16 });
    expect(() => createMixer({ sources: { a: mono("a"), long }, schedule: { a: 1 } })).toThrow(/seqLen 16.*8/);
    const m = createMixer({ sources, schedule: { a: 1 } });
    expect(() => m.nextBatch(0, t0)).toThrow(DataConfigError);
  });

  it("maxEpochs stops with EpochLimitError and leaves the mixer as it was before the failing call", () => {
    const small = packPretrain(["abcdefghijklmnopq"], tok, { seqLen: 4 }); // 18 tokens → 4 blocks
    const m = createMixer({ sources: { s: small }, schedule: { s: 1 }, seed: 3, maxEpochs: 2 });
    m.nextBatch(8, t0); // exactly two epochs
    const before = m.getState();
    expect(() => m.nextBatch(1, t0)).toThrow(EpochLimitError);
    expect(() => m.nextBatch(1, t0)).toThrow(/'s' reached its cap of 2 epoch/);
    expect(m.getState()).toEqual(before);
    const perSource = createMixer({ sources: { s: small, a: mono("a", 4) }, schedule: { s: 1 }, maxEpochs: { s: 1 } });
    perSource.nextBatch(4, t0);
    expect(() => perSource.nextBatch(1, t0)).toThrow(EpochLimitError);
    expect(() => createMixer({ sources: { s: small }, schedule: { s: 1 }, maxEpochs: { t: 1 } })).toThrow(UnknownSourceError);
  });
});

describe("evaluation batches", () => {
  it("cover the whole validation split in a fixed order, last batch smaller", () => {
    const valid = packPretrain(["abcdefghijklmnopqrstuvwxyz"], tok, { seqLen: 4, keepTail: true }); // 27 tokens → 6 full + 1 tail
    const m = createMixer({ sources: { s: mono("s", 4) }, schedule: { s: 1 }, validation: { s: valid } });
    const batches = [...m.evalBatches("s", 3)];
    expect(batches.map((b) => b.batchSize)).toEqual([3, 3, 1]);
    expect(batches.flatMap((b) => b.indices)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect([...m.evalBatches("s", 3)].map((b) => Array.from(b.inputs))).toEqual(batches.map((b) => Array.from(b.inputs)));
    expect(() => m.evalBatches("nope", 3)).toThrow(UnknownSourceError);
  });
});

describe("fixture schedule", () => {
  it("switches at step 50", () => {
    expect(switchSchedule().at(time(49))).toEqual({ general: 1 });
    expect(switchSchedule().at(time(50))).toEqual({ general: 0.5, code: 0.3, qa: 0.2 });
  });
});
