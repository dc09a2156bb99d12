// Neural-network ops (convolution, pooling, resampling, normalisation, softmax, attention, losses,
// embedding, dropout). Filled in by the ops that need dedicated kernels.
export {};
