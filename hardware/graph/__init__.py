"""Reading a graph: the network representation (ir), reading NIR exactly or discretised and quantised,
its checks and contract, and the linear operations a synapse is composed from."""
