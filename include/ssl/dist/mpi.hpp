#pragma once
// ssl::dist::mpi: the communicator (dist/communicator.hpp) over MPI, for
// programs launched with `mpirun -np P` or Slurm's `srun`. Include this header
// only in a project that has MPI: in CMake, link `ssl::mpi` (defined when
// find_package(MPI) finds MPI's C bindings; it adds MPI::MPI_C and
// SSL_HAVE_MPI=1). ssl::ssl itself never needs MPI.
//
//   ssl::dist::mpi_session mpi(argc, argv);   // MPI_Init_thread / MPI_Finalize
//   ssl::dist::mpi comm;                       // a duplicate of MPI_COMM_WORLD
//   cfg.comm = &comm;                          // ssl::trainer_config
//
// Design choices:
//   - MPI's C API only (the C++ bindings are gone since MPI-3).
//   - the communicator duplicates the one it is given (MPI_Comm_dup), so ssl's
//     collectives never match a user's own messages on the same communicator.
//   - errors: MPI_ERRORS_RETURN on the duplicate, each failure a dist_error
//     naming the call, counts and MPI's error string.
//   - MPI_THREAD_FUNNELED: only the thread that trains calls MPI (ssl's thread
//     pool and the loader's workers never do).
//   - counts above INT_MAX elements are refused with a message (MPI-3 counts
//     are int; MPI-4's _c variants are not in Debian 12's Open MPI).
#include <mpi.h>

#include <climits>
#include <string>

#include "communicator.hpp"

namespace ssl::dist {

namespace detail {
inline void mpi_check(int rc, const char* call, std::size_t count, dtype t) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw dist_error(ssl::detail::cat("dist::mpi: ", call, " of ", count, " ", name_of(t), " values failed: ",
                                      std::string(msg, static_cast<std::size_t>(len))));
}
inline MPI_Datatype mpi_type(dtype t) {
    switch (t) {
        case dtype::f32: return MPI_FLOAT;
        case dtype::f64: return MPI_DOUBLE;
        case dtype::i32: return MPI_INT32_T;
        default: return MPI_INT64_T;
    }
}
inline int mpi_count(std::size_t n, const char* call) {
    require<dist_error>(n <= static_cast<std::size_t>(INT_MAX), "dist::mpi: ", call, " of ", n,
                        " elements; MPI counts are int (at most ", INT_MAX, "), split the buffer");
    return static_cast<int>(n);
}
}  // namespace detail

/// MPI_Init_thread(FUNNELED) on construction (unless MPI is already
/// initialized), MPI_Finalize on destruction (if it initialized MPI).
class mpi_session {
public:
    mpi_session(int& argc, char**& argv) { init(&argc, &argv); }
    mpi_session() { init(nullptr, nullptr); }
    mpi_session(const mpi_session&) = delete;
    mpi_session& operator=(const mpi_session&) = delete;
    ~mpi_session() {
        int fin = 0;
        MPI_Finalized(&fin);
        if (owner_ && !fin) MPI_Finalize();
    }

private:
    void init(int* argc, char*** argv) {
        int done = 0;
        MPI_Initialized(&done);
        if (done) return;
        int provided = 0;
        const int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        require<dist_error>(rc == MPI_SUCCESS, "dist::mpi_session: MPI_Init_thread failed (code ", rc, ")");
        owner_ = true;
    }
    bool owner_ = false;
};

class mpi final : public communicator {
public:
    /// A duplicate of `base` (MPI_COMM_WORLD by default); MPI must be initialized.
    explicit mpi(MPI_Comm base = MPI_COMM_WORLD) {
        int init = 0;
        MPI_Initialized(&init);
        require<dist_error>(init != 0, "dist::mpi: MPI is not initialized; create an ssl::dist::mpi_session first");
        detail::mpi_check(MPI_Comm_dup(base, &comm_), "MPI_Comm_dup", 0, dtype::i32);
        MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
        MPI_Comm_rank(comm_, &rank_);
        MPI_Comm_size(comm_, &size_);
    }
    mpi(const mpi&) = delete;
    mpi& operator=(const mpi&) = delete;
    ~mpi() override {
        int fin = 0;
        MPI_Finalized(&fin);
        if (!fin && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    }

    int rank() const noexcept override { return rank_; }
    int size() const noexcept override { return size_; }
    std::string name() const override {
        char v[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        MPI_Get_library_version(v, &len);
        std::string s(v, static_cast<std::size_t>(len));
        if (const auto nl = s.find_first_of("\n,"); nl != std::string::npos) s.resize(nl);
        return "MPI (" + s + "), " + std::to_string(size_) + " ranks";
    }
    MPI_Comm handle() const noexcept { return comm_; }

    void allreduce_sum(void* b, std::size_t n, dtype t) override {
        detail::mpi_check(MPI_Allreduce(MPI_IN_PLACE, b, detail::mpi_count(n, "MPI_Allreduce"), detail::mpi_type(t),
                                        MPI_SUM, comm_),
                          "MPI_Allreduce(sum)", n, t);
    }
    void allreduce_max(void* b, std::size_t n, dtype t) override {
        detail::mpi_check(MPI_Allreduce(MPI_IN_PLACE, b, detail::mpi_count(n, "MPI_Allreduce"), detail::mpi_type(t),
                                        MPI_MAX, comm_),
                          "MPI_Allreduce(max)", n, t);
    }
    void allgather(const void* s, void* r, std::size_t n, dtype t) override {
        const int c = detail::mpi_count(n, "MPI_Allgather");
        detail::mpi_check(MPI_Allgather(s, c, detail::mpi_type(t), r, c, detail::mpi_type(t), comm_), "MPI_Allgather",
                          n, t);
    }
    void reduce_scatter_sum(const void* s, void* r, std::size_t n, dtype t) override {
        detail::mpi_check(MPI_Reduce_scatter_block(s, r, detail::mpi_count(n, "MPI_Reduce_scatter_block"),
                                                   detail::mpi_type(t), MPI_SUM, comm_),
                          "MPI_Reduce_scatter_block", n, t);
    }
    void all_to_all(const void* s, void* r, std::size_t n, dtype t) override {
        const int c = detail::mpi_count(n, "MPI_Alltoall");
        detail::mpi_check(MPI_Alltoall(s, c, detail::mpi_type(t), r, c, detail::mpi_type(t), comm_), "MPI_Alltoall", n,
                          t);
    }
    void broadcast(void* b, std::size_t n, dtype t, int root) override {
        require<dist_error>(root >= 0 && root < size_, "dist::mpi: broadcast from root ", root, ", not a rank of ",
                            size_);
        detail::mpi_check(MPI_Bcast(b, detail::mpi_count(n, "MPI_Bcast"), detail::mpi_type(t), root, comm_),
                          "MPI_Bcast", n, t);
    }
    void barrier() override { detail::mpi_check(MPI_Barrier(comm_), "MPI_Barrier", 0, dtype::i32); }
    /// MPI_Comm_split; the group is a communicator of its own (a duplicate
    /// of the split, as every ssl::dist::mpi).
    std::unique_ptr<communicator> split(int color, int key) override {
        require<dist_error>(color >= 0, "dist::mpi: split color ", color, " must be >= 0");
        MPI_Comm part = MPI_COMM_NULL;
        detail::mpi_check(MPI_Comm_split(comm_, color, key, &part), "MPI_Comm_split", 0, dtype::i32);
        std::unique_ptr<communicator> g = std::make_unique<mpi>(part);
        MPI_Comm_free(&part);
        return g;
    }
    using communicator::allgather;
    using communicator::allreduce_max;
    using communicator::allreduce_sum;
    using communicator::all_to_all;
    using communicator::broadcast;
    using communicator::reduce_scatter_sum;

private:
    MPI_Comm comm_ = MPI_COMM_NULL;
    int rank_ = 0, size_ = 1;
};

}  // namespace ssl::dist
