/** The study config's YAML text, provided by vite.config.ts (`MIDTRAIN_STUDY`, else the micro study's file). */
declare module "virtual:midtrain-study" {
  const text: string;
  export default text;
  /** The config file's name, for the page's header line. */
  export const fileName: string;
}
