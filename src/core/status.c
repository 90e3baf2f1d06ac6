/* The version, status names and OpenCL error names (the error text
   itself is error_text.c's). */
#include "context_internal.h"

unsigned clattn_version_number(void)
{
    return CLATTN_VERSION_NUMBER;
}

#define VERSION_TEXT(x) #x
#define VERSION_STRING(major, minor, patch)                                    \
    VERSION_TEXT(major) "." VERSION_TEXT(minor) "." VERSION_TEXT(patch)

/* From the header's macros, which carry CMake's project version
   (tests/test_abi_growth.c checks all three agree). */
const char *clattn_version_string(void)
{
    return VERSION_STRING(CLATTN_VERSION_MAJOR, CLATTN_VERSION_MINOR,
                          CLATTN_VERSION_PATCH);
}

const char *clattn_status_string(clattn_status status)
{
    switch (status) {
    case CLATTN_SUCCESS: return "success";
    case CLATTN_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case CLATTN_ERROR_INVALID_SHAPE: return "invalid shape";
    case CLATTN_ERROR_BUFFER_TOO_SMALL: return "buffer too small";
    case CLATTN_ERROR_UNSUPPORTED: return "unsupported on this device";
    case CLATTN_ERROR_NO_DEVICE: return "no OpenCL device";
    case CLATTN_ERROR_BUILD_FAILED: return "kernel build failed";
    case CLATTN_ERROR_OUT_OF_MEMORY: return "out of memory";
    case CLATTN_ERROR_OPENCL: return "OpenCL error";
    case CLATTN_ERROR_BLAS: return "BLAS (CLBlast) error";
    case CLATTN_ERROR_SIZE_OVERFLOW: return "size overflow";
    }
    return "unknown status";
}

const char *cl_error_name(cl_int code)
{
    switch (code) {
        /* clang-format off */
#define NAME(c) case c: return #c;
        NAME(CL_SUCCESS) NAME(CL_DEVICE_NOT_FOUND) NAME(CL_DEVICE_NOT_AVAILABLE)
        NAME(CL_COMPILER_NOT_AVAILABLE) NAME(CL_MEM_OBJECT_ALLOCATION_FAILURE)
        NAME(CL_OUT_OF_RESOURCES) NAME(CL_OUT_OF_HOST_MEMORY)
        NAME(CL_PROFILING_INFO_NOT_AVAILABLE) NAME(CL_MEM_COPY_OVERLAP)
        NAME(CL_BUILD_PROGRAM_FAILURE) NAME(CL_MAP_FAILURE)
        NAME(CL_MISALIGNED_SUB_BUFFER_OFFSET)
        NAME(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
        NAME(CL_COMPILE_PROGRAM_FAILURE) NAME(CL_LINKER_NOT_AVAILABLE)
        NAME(CL_LINK_PROGRAM_FAILURE) NAME(CL_INVALID_VALUE)
        NAME(CL_INVALID_DEVICE_TYPE) NAME(CL_INVALID_PLATFORM)
        NAME(CL_INVALID_DEVICE) NAME(CL_INVALID_CONTEXT)
        NAME(CL_INVALID_QUEUE_PROPERTIES) NAME(CL_INVALID_COMMAND_QUEUE)
        NAME(CL_INVALID_HOST_PTR) NAME(CL_INVALID_MEM_OBJECT)
        NAME(CL_INVALID_BINARY) NAME(CL_INVALID_BUILD_OPTIONS)
        NAME(CL_INVALID_PROGRAM) NAME(CL_INVALID_PROGRAM_EXECUTABLE)
        NAME(CL_INVALID_KERNEL_NAME) NAME(CL_INVALID_KERNEL)
        NAME(CL_INVALID_ARG_INDEX) NAME(CL_INVALID_ARG_VALUE)
        NAME(CL_INVALID_ARG_SIZE) NAME(CL_INVALID_KERNEL_ARGS)
        NAME(CL_INVALID_WORK_DIMENSION) NAME(CL_INVALID_WORK_GROUP_SIZE)
        NAME(CL_INVALID_WORK_ITEM_SIZE) NAME(CL_INVALID_GLOBAL_OFFSET)
        NAME(CL_INVALID_EVENT_WAIT_LIST) NAME(CL_INVALID_EVENT)
        NAME(CL_INVALID_OPERATION) NAME(CL_INVALID_BUFFER_SIZE)
        NAME(CL_INVALID_GLOBAL_WORK_SIZE)
#undef NAME
            /* clang-format on */
            case -1001 : return "CL_PLATFORM_NOT_FOUND_KHR";
    }
    return "unknown OpenCL error";
}
