/**
 * Documented names for the tfjs tensor types that appear in the library's public signatures.
 *
 * They are plain aliases of the umbrella package's types, so any `tf.Tensor` is accepted; they exist so
 * that the public API documents (and `deno doc --lint` accepts) what it takes and returns.
 *
 * @module
 */
import type { tf } from "./deps.ts";

/**
 * A tfjs tensor of any rank.
 *
 * @category NN
 */
export type Tensor = tf.Tensor;
/**
 * A rank-0 tfjs tensor (a loss, a metric).
 *
 * @category NN
 */
export type Scalar = tf.Scalar;
/**
 * A rank-1 tfjs tensor.
 *
 * @category NN
 */
export type Tensor1D = tf.Tensor1D;
/**
 * A rank-2 tfjs tensor, e.g. token ids [B, T] or logits [B, V].
 *
 * @category NN
 */
export type Tensor2D = tf.Tensor2D;
/**
 * A rank-3 tfjs tensor, e.g. hidden states [B, T, d].
 *
 * @category NN
 */
export type Tensor3D = tf.Tensor3D;
/**
 * A rank-4 tfjs tensor, e.g. attention patterns [B, H, T, L].
 *
 * @category NN
 */
export type Tensor4D = tf.Tensor4D;
/**
 * A trainable tfjs variable.
 *
 * @category NN
 */
export type Variable = tf.Variable;
/**
 * The element types tfjs tensors can hold.
 *
 * @category NN
 */
export type DataType = tf.DataType;
