-- People are stored in Unicode NFC from now on (a Mac's export may write
-- "Å" as "A" and a combining ring, NFD), so that an import or a sign-in
-- finds them whatever form it brings. This puts the people stored before
-- in NFC too. An email whose NFC form is another person's already stays
-- as it is (two people cannot share an address). normalize() needs a
-- UTF8 database; in any other there is nothing to normalize.
DO $$
DECLARE
    r record;
BEGIN
    IF current_setting('server_encoding') <> 'UTF8' THEN
        RETURN;
    END IF;
    UPDATE people SET name = normalize(name, NFC), organisation = normalize(organisation, NFC)
    WHERE name IS NOT NFC NORMALIZED OR organisation IS NOT NFC NORMALIZED;
    FOR r IN SELECT id FROM people WHERE email IS NOT NFC NORMALIZED LOOP
        BEGIN
            UPDATE people SET email = normalize(email, NFC) WHERE id = r.id;
        EXCEPTION WHEN unique_violation THEN
            NULL; -- another person has that address: this one keeps its form
        END;
    END LOOP;
END
$$;
