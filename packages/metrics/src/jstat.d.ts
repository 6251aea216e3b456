// jstat ships no types; only the two quantile functions this package calls are declared.
declare module "jstat" {
  const jstat: {
    jStat: {
      studentt: { inv(p: number, dof: number): number };
      normal: { inv(p: number, mean: number, std: number): number };
    };
  };
  export default jstat;
}
