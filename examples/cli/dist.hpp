#pragma once
// The ssl program under `mpirun -np P ssl train ...` (or Slurm's srun): data
// parallel over MPI when the program was built with MPI (CMake found it:
// ssl::mpi, SSL_HAVE_MPI), rank 0 alone printing, evaluating and writing.
// Launched by an MPI launcher with more than one rank but built without MPI,
// the program refuses to start (P copies would each train alone and write
// over each other's checkpoints).
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <string>

#include <ssl/core/error.hpp>
#include <ssl/dist/communicator.hpp>
#ifdef SSL_HAVE_MPI
#include <ssl/dist/mpi.hpp>
#endif

namespace cli {

/// Ranks announced by the launcher's environment (Open MPI, MPICH / Slurm's
/// PMI, PMIx, Slurm), or 1.
inline int launcher_ranks() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"})
        if (const char* s = std::getenv(v)) {
            const int n = std::atoi(s);
            if (n > 0) return n;
        }
    return 1;
}

/// Ranks of this run on this machine, from the launcher's environment (Open
/// MPI's, MPICH's and PMIx's local size; Slurm's tasks per node when it is one
/// number), or launcher_ranks() when it names none (as if all ran here).
inline int launcher_local_ranks() {
    for (const char* v : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMIX_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE"})
        if (const char* s = std::getenv(v)) {
            const int n = std::atoi(s);
            if (n > 0) return n;
        }
    return launcher_ranks();
}

/// Host threads per rank when --threads is not given: the machine's
/// hardware threads shared by the ranks on it (at least 1), so that P ranks
/// do not each start a thread per core and oversubscribe it P times; 0 (the
/// thread pool's own default, every core) for one process.
inline std::size_t default_threads_per_rank(std::size_t hardware) {
    const int local = launcher_local_ranks();
    if (local <= 1) return 0;
    return std::max<std::size_t>(1, hardware / static_cast<std::size_t>(local));
}

/// The communicator of this run: MPI over all ranks when launched with more
/// than one, else null (one process, as always). MPI is finalized at exit.
inline ssl::dist::communicator* run_communicator() {
    const int ranks = launcher_ranks();
    if (ranks <= 1) return nullptr;
#ifdef SSL_HAVE_MPI
    static std::unique_ptr<ssl::dist::mpi_session> session;
    static std::unique_ptr<ssl::dist::mpi> comm;
    if (!comm) {
        session = std::make_unique<ssl::dist::mpi_session>();
        comm = std::make_unique<ssl::dist::mpi>();
    }
    return comm->size() > 1 ? comm.get() : nullptr;
#else
    throw ssl::error(ssl::detail::cat("launched as one of ", ranks,
                                      " ranks, but this ssl program was built without MPI: rebuild with MPI installed "
                                      "(Debian: libopenmpi-dev openmpi-bin; CMake finds it) or run one process"));
#endif
}

/// Whether this process prints, evaluates and writes (rank 0, or the only one).
inline bool lead_rank(const ssl::dist::communicator* c) { return c == nullptr || c->rank() == 0; }

}  // namespace cli
