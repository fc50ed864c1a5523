// The dist tests' main: MPI up, one ssl thread per rank (the ranks share the
// cores), doctest on every rank (rank 0 alone reports unless a rank fails),
// and the exit status is the worst over the ranks.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <ssl/core/thread_pool.hpp>
#include <ssl/dist/mpi.hpp>

#include <cstdio>

int main(int argc, char** argv) {
    ssl::dist::mpi_session session(argc, argv);
    ssl::set_num_threads(1);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    doctest::Context ctx(argc, argv);
    int rc = ctx.run();
    if (ctx.shouldExit()) return rc;
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0 && worst != rc) std::fprintf(stderr, "a rank other than 0 failed (see its report above)\n");
    return worst;
}
