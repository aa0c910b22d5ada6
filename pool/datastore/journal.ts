// Undoable edits of the store's document. Every change a transition makes
// goes through here, so a composed write refused half-way is rolled back
// and none of it lands. Rows are put whole: a row is never edited in place.

import type { StoreDoc } from "../store.js";

export type TableName = "enis" | "ips" | "intents" | "blockedVSwitches";
export type Row<T extends TableName> = StoreDoc[T][string];

export interface Journal {
  put<T extends TableName>(table: T, key: string, row: Row<T>): void;
  remove(table: TableName, key: string): void;
  setCreateBackoffUntil(until: number): void;
  /** Did this journal edit anything? */
  changed(): boolean;
  /** Put back everything edited, last edit first. */
  undo(): void;
}

export function openJournal(doc: StoreDoc): Journal {
  const undos: (() => void)[] = [];
  const remember = (table: TableName, key: string): void => {
    const rows = doc[table] as Record<string, unknown>;
    const had = Object.hasOwn(rows, key);
    const before = rows[key];
    undos.push(() => {
      if (had) rows[key] = before;
      else delete rows[key];
    });
  };
  return {
    put(table, key, row) {
      remember(table, key);
      (doc[table] as Record<string, typeof row>)[key] = row;
    },
    remove(table, key) {
      if (!Object.hasOwn(doc[table], key)) return;
      remember(table, key);
      delete doc[table][key];
    },
    setCreateBackoffUntil(until) {
      const before = doc.createBackoffUntil;
      undos.push(() => {
        doc.createBackoffUntil = before;
      });
      doc.createBackoffUntil = until;
    },
    changed: () => undos.length > 0,
    undo() {
      for (const u of undos.splice(0).reverse()) u();
    },
  };
}
