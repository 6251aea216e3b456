/**
 * Where the page finds the corpora shipped with `@midtrain/data`, shared by the page and
 * vite.config.ts (so this module imports nothing).
 *
 * The served `corpora/` folder holds MANIFEST.json and the full train and validation files of the
 * corpora the study config names; `corpora/head/` holds the first {@link HEAD_DOCUMENTS}
 * documents of each of those train files. The shrunken study (`?smoke=1`) caps every source at
 * that many documents, so it fetches the heads instead of whole train files (about 8 MB less).
 */

/** Documents in each `corpora/head/` train file; the shrunken study's per-source cap. */
export const HEAD_DOCUMENTS = 24;

/** The folder of the head files, relative to the corpora folder. */
export const HEAD_DIR = "head/";
