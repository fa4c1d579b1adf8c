package cardsuite.simbridge.gp;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The ISD's keys (GP Card Spec §10.3.3, §11.8): key versions, each with keys by identifier. Versions whose keys 1, 2
 * and 3 (ENC, MAC, DEK) have the type the secure channel uses are SCP key sets that INITIALIZE UPDATE can name;
 * other versions hold keys for other purposes (a DAP key, token keys). The content is replaced as a whole by
 * {@link #publish}, so a PUT KEY is one step: the maps handed out are never changed afterwards.
 */
final class KeyStore {
    /** Key types (GP Card Spec §11.1.8, Table 11-16). */
    static final int TYPE_DES = 0x80;
    static final int TYPE_AES = 0x88;
    /** RSA public key components in clear (Table 11-16): A1 the modulus N, A0 the public exponent e. */
    static final int TYPE_RSA_PUBLIC_N = 0xA1;
    static final int TYPE_RSA_PUBLIC_E = 0xA0;
    static final int ID_ENC = 1;
    static final int ID_MAC = 2;
    static final int ID_DEK = 3;
    /** Key versions a card has room for; one more PUT KEY [add] answers 6A84. */
    static final int MAX_VERSIONS = 8;

    /** One key: a symmetric key's value, or an RSA public key's modulus (type A1) with its exponent. */
    static final class Key {
        final int type;
        final byte[] value;
        /** The RSA public exponent, null for a symmetric key. */
        final byte[] exponent;

        Key(int type, byte[] value) {
            this.type = type;
            this.value = value.clone();
            this.exponent = null;
        }

        Key(byte[] modulus, byte[] exponent) {
            this.type = TYPE_RSA_PUBLIC_N;
            this.value = modulus.clone();
            this.exponent = exponent.clone();
        }
    }

    private final int scpType;
    private Map<Integer, Map<Integer, Key>> versions;

    KeyStore(StaticKeys initial, int scpType) {
        this.scpType = scpType;
        Map<Integer, Map<Integer, Key>> start = new LinkedHashMap<>();
        start.put(initial.version, keySet(initial, scpType));
        versions = Collections.unmodifiableMap(start);
    }

    static Map<Integer, Key> keySet(StaticKeys keys, int type) {
        Map<Integer, Key> set = new LinkedHashMap<>();
        set.put(ID_ENC, new Key(type, keys.enc));
        set.put(ID_MAC, new Key(type, keys.mac));
        set.put(ID_DEK, new Key(type, keys.dek));
        return Collections.unmodifiableMap(set);
    }

    int scpType() {
        return scpType;
    }

    /** The current content: version → identifier → key, all unmodifiable. */
    Map<Integer, Map<Integer, Key>> snapshot() {
        return versions;
    }

    /** Makes {@code next} the content in one step (the commit of a PUT KEY). */
    void publish(Map<Integer, Map<Integer, Key>> next) {
        Map<Integer, Map<Integer, Key>> copy = new LinkedHashMap<>();
        for (Map.Entry<Integer, Map<Integer, Key>> entry : next.entrySet()) {
            copy.put(entry.getKey(), Collections.unmodifiableMap(new LinkedHashMap<>(entry.getValue())));
        }
        versions = Collections.unmodifiableMap(copy);
    }

    /**
     * The SCP key set INITIALIZE UPDATE P1 names: that version, or for 00 the first SCP key set on the card (the
     * card's default). Null when there is none.
     */
    StaticKeys scpKeys(int version) {
        for (Map.Entry<Integer, Map<Integer, Key>> entry : versions.entrySet()) {
            if ((version == 0 || entry.getKey() == version) && isScpKeySet(entry.getValue())) {
                Map<Integer, Key> set = entry.getValue();
                return new StaticKeys(set.get(ID_ENC).value, set.get(ID_MAC).value, set.get(ID_DEK).value,
                        entry.getKey());
            }
        }
        return null;
    }

    /** The version INITIALIZE UPDATE P1 00 uses: the default SCP key set's. */
    int defaultVersion() {
        StaticKeys keys = scpKeys(0);
        return keys == null ? 0 : keys.version;
    }

    boolean isScpKeySet(Map<Integer, Key> set) {
        Key enc = set.get(ID_ENC);
        Key mac = set.get(ID_MAC);
        Key dek = set.get(ID_DEK);
        return enc != null && mac != null && dek != null && enc.type == scpType && mac.type == scpType
                && dek.type == scpType && enc.value.length == mac.value.length
                && mac.value.length == dek.value.length;
    }

    /**
     * Key Information Template entries (§11.3.3.1): id, version, then type and length of each component (one for a
     * symmetric key; modulus A1 and exponent A0 for an RSA public key), one entry per key.
     */
    List<byte[]> information() {
        List<byte[]> entries = new ArrayList<>();
        for (Map.Entry<Integer, Map<Integer, Key>> version : versions.entrySet()) {
            for (Map.Entry<Integer, Key> entry : version.getValue().entrySet()) {
                Key key = entry.getValue();
                byte[] head = {entry.getKey().byteValue(), version.getKey().byteValue(), (byte) key.type,
                        (byte) key.value.length};
                entries.add(key.exponent == null ? head : Bytes.concat(head,
                        new byte[] {(byte) TYPE_RSA_PUBLIC_E, (byte) key.exponent.length}));
            }
        }
        return entries;
    }
}
