/* The _init of the layer descs that have no file of their own to hold it:
   zero (every field's default) and struct_size, so a later version can
   grow them (clattn.h, Growable structs). */
#include "clattn/clattn.h"

#include <string.h>

void clattn_talking_heads_desc_init(clattn_talking_heads_desc *desc)
{
    if (desc) {
        memset(desc, 0, sizeof *desc);
        desc->struct_size = sizeof *desc;
    }
}

void clattn_additive_desc_init(clattn_additive_desc *desc)
{
    if (desc) {
        memset(desc, 0, sizeof *desc);
        desc->struct_size = sizeof *desc;
    }
}

void clattn_concat_desc_init(clattn_concat_desc *desc)
{
    if (desc) {
        memset(desc, 0, sizeof *desc);
        desc->struct_size = sizeof *desc;
    }
}
