// Loads the native addon (build/Release/ldm_native.node) and installs its kernels. Placeholder until
// the addon exists: the reference kernels stay active.
export {};
