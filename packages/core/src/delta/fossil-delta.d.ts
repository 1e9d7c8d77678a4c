/** Types of the `fossil-delta` package (it ships none): byte arrays in, plain arrays of bytes out. */
declare module "fossil-delta" {
  type Bytes = ArrayLike<number>;
  const fossilDelta: {
    create(origin: Bytes, target: Bytes): number[];
    apply(origin: Bytes, delta: Bytes, options?: { verifyChecksum?: boolean }): number[];
    outputSize(delta: Bytes): number;
  };
  export default fossilDelta;
}
