"""Scale tests: dask-chunked cubes on a local cluster."""
