"""Our own Lava processes. Lava's compiler imports every module in a process's folder to find its models,
so this folder holds only Lava process definitions."""
