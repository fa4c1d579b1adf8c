package cardsuite.simbridge.gp;

import java.math.BigInteger;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.RSAPublicKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * DAP verification (GP Card Spec v2.3.1 §9.2, §9.3.5, Appendix C.3): INSTALL [for load] carries the Load File Data
 * Block Hash (§11.5.2.3.1, C.2), the Load File carries DAP blocks (tag E2: 4F the security domain's AID, C3 its
 * signature of the hash) before the Load File Data Block (C4, Table 11-58), and a security domain with the DAP
 * Verification privilege ('C0', Table 11-7) checks its DAP block with its DAP verification key; one with Mandated
 * DAP Verification ('C1'), once PERSONALIZED, does so for every load on the card. Which key is "implicitly known by
 * the Security Domain" (§9.2.1): here its RSA public key of key version 73, the version gp.jar lists for DAP
 * verification. The scheme is RSA Scheme 1 (B.3.1.1): a 1024-bit key, RSASSA-PKCS1-v1_5 with SHA-1 over the hash.
 */
final class Dap {
    /** The key version of a security domain's DAP verification key (gp.jar's convention; the spec names none). */
    static final int KEY_VERSION = 0x73;
    /** The one RSA key size this card verifies with (Scheme 1). */
    static final int MODULUS_LENGTH = 128;
    static final int TAG_DAP_BLOCK = 0xE2;
    static final int TAG_SD_AID = 0x4F;
    static final int TAG_SIGNATURE = 0xC3;
    static final int TAG_LOAD_FILE_DATA_BLOCK = 0xC4;

    private Dap() {
    }

    /** A Load File as LOAD delivered it: its DAP blocks (SD AID hex → signature) and its Load File Data Block. */
    static final class LoadFileData {
        final Map<String, byte[]> signatures;
        final byte[] dataBlock;

        private LoadFileData(Map<String, byte[]> signatures, byte[] dataBlock) {
            this.signatures = signatures;
            this.dataBlock = dataBlock;
        }
    }

    /**
     * Table 11-58: zero or more E2 blocks, then one C4 (a D4 ciphered block is not supported here). 6A80 for anything
     * else, a DAP block without 4F and C3, or two blocks for one security domain.
     */
    static LoadFileData parse(byte[] loadData) {
        Map<String, byte[]> signatures = new java.util.LinkedHashMap<>();
        byte[] dataBlock = null;
        for (Tlv tlv : Tlv.parse(loadData)) {
            if (tlv.tag == TAG_DAP_BLOCK && dataBlock == null) {
                List<Tlv> inner = Tlv.parse(tlv.value);
                byte[] sd = Tlv.find(inner, TAG_SD_AID);
                byte[] signature = Tlv.find(inner, TAG_SIGNATURE);
                if (sd == null || signature == null || signatures.put(Registry.key(sd), signature) != null) {
                    throw new GpException(Sw.WRONG_DATA, "a DAP block is 4F (one SD's AID) and C3 (its signature)");
                }
            } else if (tlv.tag == TAG_LOAD_FILE_DATA_BLOCK && dataBlock == null) {
                dataBlock = tlv.value;
            } else {
                throw new GpException(Sw.WRONG_DATA, String.format("unexpected tag %02X in the load file", tlv.tag));
            }
        }
        if (dataBlock == null) {
            throw new GpException(Sw.WRONG_DATA, "no load file data block (C4)");
        }
        return new LoadFileData(signatures, dataBlock);
    }

    /**
     * The hash algorithm of a Load File Data Block Hash, told by its length (§11.5.2.3.1: SHA-1, or the SHA-2
     * family, B.5); 6A80 for any other length.
     */
    static String hashAlgorithm(int length) {
        switch (length) {
            case 20: return "SHA-1";
            case 32: return "SHA-256";
            case 48: return "SHA-384";
            case 64: return "SHA-512";
            default: throw new GpException(Sw.WRONG_DATA, "a Load File Data Block Hash has 20, 32, 48 or 64 bytes");
        }
    }

    static byte[] hash(String algorithm, byte[] data) {
        try {
            return MessageDigest.getInstance(algorithm).digest(data);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(algorithm + " missing from the JVM", e);
        }
    }

    /** The DAP verification key of a key store (version 73, an RSA public key), or null. */
    static KeyStore.Key key(KeyStore keys) {
        Map<Integer, KeyStore.Key> version = keys.snapshot().get(KEY_VERSION);
        if (version == null) {
            return null;
        }
        for (KeyStore.Key key : version.values()) {
            if (key.type == KeyStore.TYPE_RSA_PUBLIC_N) {
                return key;
            }
        }
        return null;
    }

    /**
     * Scheme 1 (B.3.1.1, C.3): RSASSA-PKCS1-v1_5 with SHA-1 over the Load File Data Block Hash (the hash is the
     * message; PKCS#1 digests it again).
     */
    static boolean verify(KeyStore.Key key, byte[] lfdbHash, byte[] signature) {
        try {
            PublicKey publicKey = KeyFactory.getInstance("RSA").generatePublic(
                    new RSAPublicKeySpec(new BigInteger(1, key.value), new BigInteger(1, key.exponent)));
            Signature verifier = Signature.getInstance("SHA1withRSA");
            verifier.initVerify(publicKey);
            verifier.update(lfdbHash);
            return signature.length == MODULUS_LENGTH && verifier.verify(signature);
        } catch (GeneralSecurityException e) {
            return false; // a malformed signature is a wrong one
        }
    }

    /**
     * The security domains that must verify a load associated with {@code target} (null: the ISD): the target if it
     * has DAP Verification, and every SD with Mandated DAP Verification.
     */
    static List<Registry.Application> verifiers(Registry registry, byte[] target) {
        List<Registry.Application> out = new ArrayList<>();
        for (Registry.Application sd : registry.securityDomains()) {
            if (sd.verifiesDap() && (sd.mandatesDap() || target != null && Arrays.equals(sd.aid, target))) {
                out.add(sd);
            }
        }
        return out;
    }
}
