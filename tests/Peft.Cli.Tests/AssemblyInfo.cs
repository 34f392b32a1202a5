// The CLI loads models with LowCpuMemoryUsage (the module tree built with TorchSharp's process-wide default device on
// `meta`): a test creating tensors on another thread meanwhile would get meta tensors, so the tests run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
