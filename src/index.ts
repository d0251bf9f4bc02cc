// select-attn: sparse-attention kernels (Quest metadata and block select, paged attention, KV cache
// writes) on cpu, cuda, ascend, ascend-sim and metal backends.
export * from './errors.js';
export * from './tensor.js';
export * from './backends.js';
export type { CallOptions } from './validate.js';
export * from './ops/quest_metadata.js';
export * from './ops/quest_select.js';
export * from './ops/paged_attention.js';
export * from './ops/kv_cache.js';
export * from './npy.js';
export * from './ascend_sim.js';
