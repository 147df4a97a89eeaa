/// The environment every engine process gets: the caller's, unchanged.
///
/// Never a clean environment: settings a cluster or machine depends on (CUDA_VISIBLE_DEVICES,
/// NCCL_* such as NCCL_NVLS_ENABLE=0, TORCH_SYMM_MEM_DISABLE_MULTICAST=1, NVSHMEM_DISABLE_NVLS=1,
/// PYTORCH_CUDA_ALLOC_CONF, proxies, scratch paths) must reach every rank as the user set them;
/// torchrun passes its own environment on to each process and adds only RANK, LOCAL_RANK,
/// WORLD_SIZE, MASTER_ADDR/PORT and friends. wanlora adds nothing and removes nothing, and in
/// particular never turns NVLink multicast or symmetric-memory multimem operations on.
public enum LaunchEnvironment {
    public static func forEngine(caller: [String: String]) -> [String: String] { caller }
}
