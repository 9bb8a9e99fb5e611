/* migrations.h — the sql/ migrations compiled into the binary (generated). */
#ifndef DB_MIGRATIONS_H
#define DB_MIGRATIONS_H

typedef struct db_migration {
    int version;       /* NNN of sql/NNN_name.sql */
    const char *name;  /* "NNN_name" */
    const char *sql;
} db_migration;

/* Ordered by version, terminated by {0, NULL, NULL}. */
extern const db_migration db_migrations[];

#endif
