import { MalformedInputError } from "./errors.js";

/** One supervised example: the prompt is context (masked by default), the response is learned. */
export interface SftExample {
  prompt: string;
  response: string;
}

/** Which record fields hold the text of a pretraining document. */
export interface TextFieldOptions {
  /** Field name (dotted paths like `meta.text` allowed). Default `text`. */
  textField?: string;
}

/**
 * Which record fields make up an SFT example. Either `prompt`+`response` (defaults `prompt`,
 * `response`) or `instruction`+`input`+`output` (Alpaca style; `input` optional). With no options,
 * the format is detected per record: prompt/response, instruction/output, question/answer.
 */
export interface SftFieldOptions {
  prompt?: string;
  response?: string;
  instruction?: string;
  input?: string;
  output?: string;
  /** Placed between instruction and a non-empty input. Default "\n\n". */
  inputSeparator?: string;
}

/** Where a record came from, for error messages. */
export interface RecordOrigin {
  file?: string;
  line?: number;
}

function getPath(record: unknown, path: string): unknown {
  if (record === null || typeof record !== "object") return undefined;
  const obj = record as Record<string, unknown>;
  if (Object.hasOwn(obj, path)) return obj[path];
  let cur: unknown = record;
  for (const part of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function describeKeys(record: unknown): string {
  if (record === null || typeof record !== "object") return `a ${record === null ? "null" : typeof record}`;
  const keys = Object.keys(record as object);
  return keys.length ? `fields ${keys.map((k) => `'${k}'`).join(", ")}` : "no fields";
}

/** The text of a pretraining record: a string as is, or `record[textField]`. */
export function recordText(record: unknown, options: TextFieldOptions = {}, origin: RecordOrigin = {}): string {
  if (typeof record === "string") return record;
  const field = options.textField ?? "text";
  const v = getPath(record, field);
  if (typeof v !== "string") {
    throw new MalformedInputError(
      `expected a string field '${field}' but the record has ${describeKeys(record)}; set textField to the field that holds the text`,
      origin.file,
      origin.line,
    );
  }
  return v;
}

/** An SFT example from a record, following `options` (see {@link SftFieldOptions}). */
export function recordSft(record: unknown, options: SftFieldOptions = {}, origin: RecordOrigin = {}): SftExample {
  const str = (field: string, required: boolean): string | undefined => {
    const v = getPath(record, field);
    if (v === undefined || v === null) {
      if (!required) return undefined;
    } else if (typeof v === "string") return v;
    else if (typeof v === "number" || typeof v === "boolean") return String(v);
    throw new MalformedInputError(
      `expected a string field '${field}' but the record has ${describeKeys(record)}; map the SFT fields with prompt/response or instruction/input/output`,
      origin.file,
      origin.line,
    );
  };
  const sep = options.inputSeparator ?? "\n\n";
  const alpaca = (instr: string, inp: string, out: string): SftExample => {
    const instruction = str(instr, true)!;
    const input = str(inp, false);
    return { prompt: input ? `${instruction}${sep}${input}` : instruction, response: str(out, true)! };
  };
  if (options.instruction || options.output) {
    return alpaca(options.instruction ?? "instruction", options.input ?? "input", options.output ?? "output");
  }
  if (options.prompt || options.response) {
    return { prompt: str(options.prompt ?? "prompt", true)!, response: str(options.response ?? "response", true)! };
  }
  if (getPath(record, "prompt") !== undefined) return { prompt: str("prompt", true)!, response: str("response", true)! };
  if (getPath(record, "instruction") !== undefined) return alpaca("instruction", "input", "output");
  if (getPath(record, "question") !== undefined) return { prompt: str("question", true)!, response: str("answer", true)! };
  throw new MalformedInputError(
    `cannot find SFT fields: the record has ${describeKeys(record)}; expected prompt/response, instruction/input/output or question/answer, or pass a field mapping`,
    origin.file,
    origin.line,
  );
}
