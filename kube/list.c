/* SPDX-License-Identifier: Apache-2.0 */
/* The pages of a LIST answer (limit/continue), gathered into one list. */
#include "kube/kube-priv.h"

int kube_list_page(json_t *page, json_t **acc, const char *prev, const char **ret_continue, const char *what,
                   KvErr *e) {
        *ret_continue = NULL;
        json_t *items = json_object_get(page, "items");
        if (items && !json_is_array(items) && !json_is_null(items))
                return kverr_set(e, KV_ERR_DECODE, -EBADMSG, "%s: 'items' must be a list", what);
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
                if (!json_is_object(it))
                        return kverr_set(e, KV_ERR_DECODE, -EBADMSG, "%s: items[%zu] must be an object", what, i);
        json_t *md = json_object_get(page, "metadata");
        json_t *cont = json_object_get(md, "continue");
        if (cont && !json_is_string(cont) && !json_is_null(cont))
                return kverr_set(e, KV_ERR_DECODE, -EBADMSG, "%s: 'metadata.continue' must be a string", what);
        const char *c = json_string_value(cont);
        if (c && *c && prev && streq(c, prev))
                return kverr_set(e, KV_ERR_DECODE, -ELOOP,
                                 "%s: the page asked for with a continue token names the same token again", what);
        if (!*acc && !(*acc = json_array()))
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "kube: out of memory");
        if (json_is_array(items) && json_array_extend(*acc, items) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "kube: out of memory");
        *ret_continue = c && *c ? c : NULL;
        return 0;
}
