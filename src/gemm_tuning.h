/* Tuned CLBlast parameters for the projection GEMMs. CLBlast ships no
   tuning for PoCL's CPU device and its defaults run ~10x below the CPU's
   BLAS there; the values measured by CLBlast's tuners (src/tuning/) are
   embedded in the library and handed to CLBlast at run time. */
#ifndef CLATTN_GEMM_TUNING_H
#define CLATTN_GEMM_TUNING_H

#include <CL/cl.h>

/* Applies the tuned CLBlast parameters that match this device's class
   (from the embedded tuning data) through CLBlastOverrideParameters.
   Returns CL_SUCCESS-like 0 on success or when no entry matches the
   device (nothing to apply), else the CLBlast status code (negative)
   and the failing kernel name in *failed_kernel (static string). */
int gemm_tuning_apply(cl_device_id device, const char **failed_kernel);

#endif
