-- Each version and part records the store that holds its manifest and content (the
-- store URL its daemon was configured with), so readers on any node find it with no
-- store setting of their own. Rows written before have NULL: their content is in the
-- reader's configured store. sqlite/schema.py's version 3 adds the same columns.
--
-- No index: deduplication reads the few live versions of one digest through
-- versions_by_digest and compares their store there.

ALTER TABLE versions ADD COLUMN store text;
ALTER TABLE parts ADD COLUMN store text;
