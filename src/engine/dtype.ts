// Element types. float32 is the working type; float64 exists so gradient checks can use finite
// differences without float32 round-off; int32/int64 hold indices and labels (int64 in a BigInt64Array,
// exactly as checkpoints store it).

export type DType = 'float32' | 'float64' | 'int32' | 'int64';
export type FloatDType = 'float32' | 'float64';
export type FloatArray = Float32Array | Float64Array;
export type TypedData = Float32Array | Float64Array | Int32Array | BigInt64Array;

export function isFloat(d: DType): d is FloatDType {
  return d === 'float32' || d === 'float64';
}

export function allocData(dtype: DType, n: number): TypedData {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'int32': return new Int32Array(n);
    case 'int64': return new BigInt64Array(n);
  }
}

export function bytesPerElement(dtype: DType): number {
  return dtype === 'float32' || dtype === 'int32' ? 4 : 8;
}

export function dtypeOf(data: TypedData): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  return 'int64';
}

/** The result type of a binary op on two float dtypes (float64 wins, like PyTorch's promotion). */
export function promote(a: DType, b: DType, op: string): FloatDType {
  if (!isFloat(a) || !isFloat(b)) {
    throw new TypeError(`${op}: expected floating-point tensors, got ${a} and ${b} (cast indices with .float())`);
  }
  return a === 'float64' || b === 'float64' ? 'float64' : 'float32';
}
