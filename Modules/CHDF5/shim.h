// The HDF5 C library, plus inline functions for the handles and flags that hdf5.h defines as
// macros (Swift imports no macro that expands to an expression or a cast).
#include <hdf5.h>

static inline hid_t soma_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t soma_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t soma_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t soma_h5s_all(void) { return H5S_ALL; }
static inline hid_t soma_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t soma_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t soma_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t soma_h5t_ieee_f64le(void) { return H5T_IEEE_F64LE; }
static inline hid_t soma_h5t_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t soma_h5t_c_s1(void) { return H5T_C_S1; }
static inline size_t soma_h5t_variable(void) { return H5T_VARIABLE; }
static inline unsigned soma_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned soma_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
/// Turns off HDF5's printing of its error stack on this thread (the caller reports errors).
static inline void soma_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
