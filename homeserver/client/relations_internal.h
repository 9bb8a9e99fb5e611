/* relations_internal.h — SQL shared by the relations, threads and search
 * files (not for other areas: they use relations.h). */
#ifndef CLIENT_RELATIONS_INTERNAL_H
#define CLIENT_RELATIONS_INTERNAL_H

#include <jansson.h>

/* The event aliased E is in the timeline and no applicable redaction took
 * it out (the rule events_read.c serves redactions by). Relation rows are
 * kept for such events; this is where they stop counting: "when a child
 * event is redacted then the relationship is broken". */
#define REL_EVENT_OK(E)                                                                      \
    " " E ".rejected_reason IS NULL AND NOT " E ".soft_failed AND NOT " E ".outlier"          \
    " AND NOT EXISTS (SELECT 1 FROM redactions x JOIN events xe ON xe.event_id = x.event_id" \
    "  WHERE x.redacts = " E ".event_id AND (x.applies OR (x.applies IS NULL AND"             \
    "  split_part(xe.sender, ':', 2) = split_part(" E ".sender, ':', 2))))"

/* SENDER is not in the m.ignored_user_list of the user given as VIEWER. */
#define REL_NOT_IGNORED(SENDER, VIEWER)                                                        \
    " NOT EXISTS (SELECT 1 FROM account_data ad WHERE ad.user_id = " VIEWER                    \
    "  AND ad.room_id = '' AND ad.type = 'm.ignored_user_list'"                                \
    "  AND jsonb_typeof(ad.content->'ignored_users') = 'object'"                               \
    "  AND ad.content->'ignored_users' ? " SENDER ")"

/* An event content's relation: rel_type and parent when m.relates_to has
 * both as strings (anything else is no relation, as the spec says). */
static inline const json_t *rel_of(const json_t *content, const char **rel_type,
                                   const char **parent) {
    const json_t *rt = json_object_get(content, "m.relates_to");
    *rel_type = json_string_value(json_object_get(rt, "rel_type"));
    *parent = json_string_value(json_object_get(rt, "event_id"));
    return json_is_object(rt) && *rel_type && *parent ? rt : NULL;
}

#endif
