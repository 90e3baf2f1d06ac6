/* Tuned CLBlast parameters for the projection GEMMs. CLBlast ships no
   tuning for PoCL's CPU device and its defaults run ~10x below the CPU's
   BLAS there; the values measured by CLBlast's tuners (src/layers/tuning/) are
   embedded in the library and handed to CLBlast at run time, keyed on the
   device's identity: a tuning is only right for the runtime it was measured
   on (PoCL's made Intel's CPU runtime ~5x slower than CLBlast's defaults),
   so a device no section names keeps CLBlast's own database. */
#ifndef CLATTN_GEMM_TUNING_H
#define CLATTN_GEMM_TUNING_H

#include <CL/cl.h>

#include <stddef.h>

/* What a section header is matched against (src/layers/tuning/clblast_cpu.txt
   says the grammar). Strings may be "" but not NULL. */
typedef struct gemm_tuning_identity {
    const char *type;            /* "CPU", "GPU", "ACCELERATOR" or "" (other) */
    const char *platform_name;   /* CL_PLATFORM_NAME */
    const char *platform_vendor; /* CL_PLATFORM_VENDOR */
    const char *device_name;     /* CL_DEVICE_NAME */
    const char *driver_version;  /* CL_DRIVER_VERSION */
} gemm_tuning_identity;

/* One kernel line of a matching section. Returns 0 or a CLBlast status. */
typedef int (*gemm_tuning_sink)(void *user, const char *kernel,
                                size_t precision, size_t count,
                                const char *const *names, const size_t *values);

/* Reads tuning text: every line is checked, in every section, and each
   kernel line of a section matching id goes to sink (in file order).
   Returns 0, or a CLBlast status code (negative) with the failing kernel
   (or "section header") in *failed (a static string): a malformed line is
   an error wherever it is, so a typo cannot hide in another device's
   section. *matched (may be NULL) counts the sections that matched. */
int gemm_tuning_parse(const char *text, const gemm_tuning_identity *id,
                      gemm_tuning_sink sink, void *user, const char **failed,
                      size_t *matched);

/* The embedded tuning data (clblast_cpu.txt), NULL if not embedded. */
const char *gemm_tuning_data(void);

/* Fills id from the device; the strings live in storage (4 x 256 bytes). */
void gemm_tuning_identity_of(cl_device_id device, gemm_tuning_identity *id,
                             char storage[4][256]);

/* Applies the embedded tuning of the sections matching this device through
   CLBlastOverrideParameters. Returns 0 on success or when no section
   matches (CLBlast's defaults stay), else the CLBlast status code
   (negative) and the failing kernel name in *failed_kernel (static
   string). */
int gemm_tuning_apply(cl_device_id device, const char **failed_kernel);

#endif
