// Conditioning encoders of LDM (ClassEmbedder, BERTEmbedder, TransformerEmbedder, SpatialRescaler) and the
// WordPiece tokenizer.
export * from './tokenizer.js';
export * from './x_transformer.js';
export * from './modules.js';
export * from './config.js';
