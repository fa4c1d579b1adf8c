package cardsuite.simbridge.gp;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * PUT KEY (GP Card Spec v2.3.1 §11.8; Amendment D §7.2.3 for AES): the command's data parsed and its key values
 * decrypted with the session's DEK, checked against their key check values, and the ISD's next key content built
 * from the current one. Nothing here changes the card: {@link CardManager} publishes the result in one step.
 */
final class PutKey {
    /** P1 b8 / P2 b8 (§11.8.2.1, §11.8.2.2). */
    private static final int MORE_COMMANDS = 0x80;
    private static final int SEVERAL_KEYS = 0x80;

    final int newVersion;
    final int replacedVersion;
    /** The keys sent, by identifier, in the order sent. */
    final Map<Integer, KeyStore.Key> keys = new LinkedHashMap<>();

    private PutKey(int newVersion, int replacedVersion) {
        this.newVersion = newVersion;
        this.replacedVersion = replacedVersion;
    }

    /**
     * Parses P1 (b7-b1 the version to replace, 00 for a new one), P2 (b7-b1 the first key's identifier, b8 several
     * keys with consecutive identifiers) and the data: the new version, then per key its type, length, the
     * encrypted value (for AES preceded by the key's length, §7.2.3), the KCV length and the KCV.
     *
     * @throws GpException 6A86 bad P1/P2, 6A80 malformed data, 9484 a key type the card does not take, 9485 a
     *     key check value that does not match the decrypted key
     */
    static PutKey parse(CommandApdu command, SecureChannel channel) {
        if ((command.p1 & MORE_COMMANDS) != 0) {
            throw new GpException(Sw.WRONG_P1P2, "PUT KEY in several commands is not supported");
        }
        int firstId = command.p2 & 0x7F;
        if (firstId == 0) {
            throw new GpException(Sw.WRONG_P1P2, "PUT KEY P2 names the first key identifier, 1..127");
        }
        byte[] data = command.data;
        if (data.length < 1) {
            throw new GpException(Sw.WRONG_DATA, "PUT KEY data starts with the new key version");
        }
        PutKey put = new PutKey(data[0] & 0xFF, command.p1 & 0x7F);
        if (put.newVersion < 1 || put.newVersion > 0x7F) {
            throw new GpException(Sw.WRONG_DATA, "a key version number is 01..7F");
        }
        int at = 1;
        int id = firstId;
        while (at < data.length) {
            at = put.readKey(data, at, id++, channel);
        }
        if (put.keys.isEmpty() || ((command.p2 & SEVERAL_KEYS) == 0 && put.keys.size() != 1)) {
            throw new GpException(Sw.WRONG_DATA, "P2 b8 says one key, or no key data follows");
        }
        return put;
    }

    private int readKey(byte[] data, int at, int id, SecureChannel channel) {
        int type = byteAt(data, at++);
        if (type == KeyStore.TYPE_RSA_PUBLIC_N) {
            return readRsaPublicKey(data, at, id);
        }
        int length = byteAt(data, at++);
        if (at + length > data.length) {
            throw new GpException(Sw.WRONG_DATA, "key data runs past the end");
        }
        byte[] field = Arrays.copyOfRange(data, at, at + length);
        at += length;
        int kcvLength = byteAt(data, at++);
        if (at + kcvLength > data.length || (kcvLength != 0 && kcvLength != 3)) {
            throw new GpException(Sw.WRONG_DATA, "a key check value has 3 bytes (or none)");
        }
        byte[] kcv = Arrays.copyOfRange(data, at, at + kcvLength);
        at += kcvLength;
        byte[] value;
        if (type == KeyStore.TYPE_DES) {
            if (field.length != 16) {
                throw new GpException(Sw.WRONG_DATA, "a triple DES key has 16 bytes");
            }
            value = channel.decryptSensitive(field);
        } else if (type == KeyStore.TYPE_AES) {
            if (field.length < 1) {
                throw new GpException(Sw.WRONG_DATA, "an AES key field starts with the key's length");
            }
            int keyLength = field[0] & 0xFF;
            if (keyLength != 16 && keyLength != 24 && keyLength != 32) {
                throw new GpException(Sw.WRONG_DATA, "an AES key has 16, 24 or 32 bytes");
            }
            byte[] plain = channel.decryptSensitive(Arrays.copyOfRange(field, 1, field.length));
            if (plain.length < keyLength) {
                throw new GpException(Sw.WRONG_DATA, "the encrypted AES key is shorter than its length");
            }
            value = Arrays.copyOf(plain, keyLength); // the rest is the host's padding
        } else {
            throw new GpException(Sw.ALGORITHM_NOT_SUPPORTED, String.format("key type %02X not supported", type));
        }
        if (kcv.length != 0 && !Bytes.same(kcv, keyCheckValue(type, value))) {
            throw new GpException(Sw.INVALID_KCV, "the key check value does not match the key");
        }
        keys.put(id, new KeyStore.Key(type, value));
        return at;
    }

    /**
     * An RSA public key (Table 11-68, basic format; §11.8.2.3.2: public components in clear; what gp --put-key sends
     * for a DAP key): the type A1 and the modulus, the type A0 and the exponent, each with a BER length, then a key
     * check value length of 00. The card verifies DAPs with 1024-bit keys (Scheme 1): 9484 for another size.
     */
    private int readRsaPublicKey(byte[] data, int at, int id) {
        int[] end = new int[1];
        byte[] modulus = component(data, at, end);
        at = end[0];
        if (byteAt(data, at++) != KeyStore.TYPE_RSA_PUBLIC_E) {
            throw new GpException(Sw.WRONG_DATA, "an RSA public key is its modulus (A1) then its exponent (A0)");
        }
        byte[] exponent = component(data, at, end);
        at = end[0];
        if (byteAt(data, at++) != 0) {
            throw new GpException(Sw.WRONG_DATA, "an RSA public key has no key check value");
        }
        if (modulus.length != Dap.MODULUS_LENGTH || modulus[0] == 0 || exponent.length == 0
                || exponent.length > 4) {
            throw new GpException(Sw.ALGORITHM_NOT_SUPPORTED, "RSA public keys of 1024 bits only (DAP Scheme 1)");
        }
        keys.put(id, new KeyStore.Key(modulus, exponent));
        return at;
    }

    /**
     * A BER length (1-3 bytes; 128 also as the single byte 80, §11.8.2.3.1) and that many bytes from {@code at};
     * end[0] the index after them.
     */
    private static byte[] component(byte[] data, int at, int[] end) {
        int length = byteAt(data, at++);
        if (length == 0x81 || length == 0x82) {
            int bytes = length & 0x7F;
            length = 0;
            for (int i = 0; i < bytes; i++) {
                length = length << 8 | byteAt(data, at++);
            }
        } else if (length > 0x80) {
            throw new GpException(Sw.WRONG_DATA, "a key component length has 1 to 3 bytes");
        }
        if (at + length > data.length) {
            throw new GpException(Sw.WRONG_DATA, "key data runs past the end");
        }
        end[0] = at + length;
        return Arrays.copyOfRange(data, at, at + length);
    }

    private static int byteAt(byte[] data, int at) {
        if (at >= data.length) {
            throw new GpException(Sw.WRONG_DATA, "key data ends early");
        }
        return data[at] & 0xFF;
    }

    static byte[] keyCheckValue(int type, byte[] value) {
        return type == KeyStore.TYPE_AES ? Scp03.keyCheckValue(value) : Scp02.keyCheckValue(value);
    }

    /**
     * The key content after this PUT KEY: a new version added (6A80 if it exists, 6A84 when the card is full), or
     * the version P1 names updated with the keys sent and renumbered to the new version (6A88 if there is no such
     * version, 6A80 if the new number is another version's). A version that was an SCP key set must stay one
     * (6A80), and the card must keep at least one.
     */
    Map<Integer, Map<Integer, KeyStore.Key>> apply(KeyStore store) {
        Map<Integer, Map<Integer, KeyStore.Key>> current = store.snapshot();
        Map<Integer, Map<Integer, KeyStore.Key>> next = new LinkedHashMap<>();
        if (replacedVersion == 0) {
            if (current.containsKey(newVersion)) {
                throw new GpException(Sw.WRONG_DATA, "key version " + newVersion + " is already on the card");
            }
            if (current.size() >= KeyStore.MAX_VERSIONS) {
                throw new GpException(Sw.NOT_ENOUGH_MEMORY, "no room for another key version");
            }
            next.putAll(current);
            next.put(newVersion, new LinkedHashMap<>(keys));
            checkKeySet(store, next.get(newVersion), false);
            return next;
        }
        Map<Integer, KeyStore.Key> old = current.get(replacedVersion);
        if (old == null) {
            throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, "no key version " + replacedVersion + " to replace");
        }
        if (newVersion != replacedVersion && current.containsKey(newVersion)) {
            throw new GpException(Sw.WRONG_DATA, "key version " + newVersion + " is already on the card");
        }
        Map<Integer, KeyStore.Key> updated = new LinkedHashMap<>(old);
        updated.putAll(keys);
        checkKeySet(store, updated, store.isScpKeySet(old));
        for (Map.Entry<Integer, Map<Integer, KeyStore.Key>> entry : current.entrySet()) {
            if (entry.getKey() == replacedVersion) {
                next.put(newVersion, updated); // in the old one's place: the default key set stays the default
            } else {
                next.put(entry.getKey(), entry.getValue());
            }
        }
        return next;
    }

    /**
     * A version that was an SCP key set, or that now has keys 1, 2 and 3, must be a whole ENC/MAC/DEK key set of the
     * secure channel's type, of one length the protocol takes. A new version with fewer keys holds keys for another
     * purpose (a DAP key, a token key: gp --put-key sends key 1 alone).
     */
    private static void checkKeySet(KeyStore store, Map<Integer, KeyStore.Key> set, boolean wasKeySet) {
        boolean whole = set.containsKey(KeyStore.ID_ENC) && set.containsKey(KeyStore.ID_MAC)
                && set.containsKey(KeyStore.ID_DEK);
        if (!wasKeySet && !whole) {
            return;
        }
        if (!store.isScpKeySet(set)) {
            throw new GpException(Sw.WRONG_DATA, "keys 1-3 must be an ENC/MAC/DEK key set of one type and length");
        }
        if (store.scpType() == KeyStore.TYPE_DES && set.get(KeyStore.ID_ENC).value.length != 16) {
            throw new GpException(Sw.WRONG_DATA, "SCP02 keys have 16 bytes");
        }
    }

    /** The response (§11.8.3): the new key version, then each symmetric key's check value (none for a public key). */
    byte[] response() {
        byte[] out = {(byte) newVersion};
        for (KeyStore.Key key : keys.values()) {
            if (key.exponent == null) {
                out = Bytes.concat(out, keyCheckValue(key.type, key.value));
            }
        }
        return out;
    }

    /** Persistent writes a card makes for this PUT KEY before its commit: one per key value. */
    int stagedWrites() {
        return keys.size();
    }
}
