package cardsuite.wallet;

import javacard.framework.APDU;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;
import javacard.security.CryptoException;
import javacard.security.ECPrivateKey;
import javacard.security.ECPublicKey;
import javacard.security.KeyAgreement;
import javacard.security.KeyBuilder;
import javacard.security.KeyPair;
import javacard.security.MessageDigest;
import javacard.security.Signature;

/**
 * Divisible prepaid e-cash ([P004]): PayWord chains per vendor and denomination, rooted in an EC
 * Diffie-Hellman secret with the vendor, spent inside the broker's amount range certificates.
 * docs/ecash-protocol.md is the protocol, docs/wallet-apdu.md the APDUs.
 *
 * Keys: c (the customer secret, generated here, never leaves the card) with public value g^c; the
 * broker's signature key, set by the issuer; the token key K_T = SHA-256(x(c·B_dh) ‖ 'K'), which only
 * this card and the broker can compute, so only they can make a token certificate.
 *
 * Chains: for vendor V and unit e the root is s_0 = SHA-256(x(c·V) ‖ 'R' ‖ e), s_k = SHA-256(s_(k-1))
 * (the root hashed k times, as in [P004]), and the payword sent for count k is
 * pw_k = SHA-256(s_k ‖ 'P'): a one-way image, so a captured payword cannot be hashed onward into a
 * later one. The card keeps s_k and k per vendor and unit, so a payment hashes forward from there:
 * at most MAX_UNITS_PER_PAYMENT hashes per unit, whatever the count already reached.
 *
 * Memory: everything is allocated here, at install. Persistent: VENDOR_SLOT (188) bytes per vendor
 * × MAX_VENDORS, the last token (1 + TOKEN_MAX), limits, spent, PID, SN, the token key and two EC keys.
 * RAM: one CLEAR_ON_DESELECT work array of W_SIZE bytes. Every update of several values is one
 * transaction, and nothing persistent is written before it.
 */
final class EcashPurse implements WalletConstants, EcashConstants {
    /** Unit values 10^e, 4 bytes each, e = 0..4. */
    private static final byte[] DENOMINATIONS = {
            0, 0, 0, (byte) 1,
            0, 0, 0, (byte) 10,
            0, 0, 0, (byte) 100,
            0, 0, (byte) 0x03, (byte) 0xE8,
            0, 0, (byte) 0x27, (byte) 0x10,
    };
    private static final short HMAC_BLOCK = (short) 64;

    // work array layout (RAM)
    private static final short W_X = (short) 0; // DH x ‖ label ‖ unit: 34
    private static final short W_VID = (short) 34;
    private static final short W_AMOUNT = (short) 42;
    private static final short W_REM = (short) 46;
    private static final short W_AVAIL = (short) 50;
    private static final short W_N = (short) 54; // units of each denomination in this payment
    private static final short W_SPENT = (short) 74; // spent after this payment
    private static final short W_COUNT = (short) 94; // this vendor's counts after this payment
    private static final short W_STATE = (short) 114; // this vendor's chain states after this payment
    private static final short W_PAD = (short) 274;
    private static final short W_INNER = (short) 338;
    private static final short W_REF = (short) 370;
    private static final short W_SIZE = (short) 378;

    private byte state;
    private byte vendorsUsed;
    private final byte[] pid;
    private final byte[] lastSn;
    private final byte[] limits;
    private final byte[] spent;
    private final byte[] tokenKey;
    private final byte[] vendors;
    /** length ‖ the last token, written with the payment: a tear before the answer loses nothing. */
    private final byte[] lastToken;
    private final ECPublicKey brokerKey;
    private final ECPrivateKey customerSecret;
    private final ECPublicKey customerPublic;
    private final KeyPair customerKeys;
    private final KeyAgreement agreement;
    private final MessageDigest sha;
    private final Signature verifier;
    private final byte[] work;

    EcashPurse() {
        pid = new byte[PID];
        lastSn = new byte[SN];
        limits = new byte[(short) (UNITS * COUNT)];
        spent = new byte[(short) (UNITS * COUNT)];
        tokenKey = new byte[TOKEN_KEY];
        vendors = new byte[(short) (MAX_VENDORS * VENDOR_SLOT)];
        lastToken = new byte[(short) (1 + TOKEN_MAX)];
        brokerKey = (ECPublicKey) KeyBuilder.buildKey(KeyBuilder.TYPE_EC_FP_PUBLIC, KeyBuilder.LENGTH_EC_FP_256, false);
        customerSecret = (ECPrivateKey) KeyBuilder.buildKey(KeyBuilder.TYPE_EC_FP_PRIVATE,
                KeyBuilder.LENGTH_EC_FP_256, false);
        customerPublic = (ECPublicKey) KeyBuilder.buildKey(KeyBuilder.TYPE_EC_FP_PUBLIC,
                KeyBuilder.LENGTH_EC_FP_256, false);
        P256.setCurve(brokerKey);
        P256.setCurve(customerSecret);
        P256.setCurve(customerPublic);
        customerKeys = new KeyPair(customerPublic, customerSecret);
        // The plain x-coordinate (3.0.4+), hashed below with our own labels.
        agreement = KeyAgreement.getInstance(KeyAgreement.ALG_EC_SVDP_DH_PLAIN, false);
        sha = MessageDigest.getInstance(MessageDigest.ALG_SHA_256, false);
        verifier = Signature.getInstance(Signature.ALG_ECDSA_SHA_256, false);
        work = JCSystem.makeTransientByteArray(W_SIZE, JCSystem.CLEAR_ON_DESELECT);
        state = PURSE_NONE;
    }

    /** The wallet is terminated: c and K_T are erased, the purse is dead. */
    void terminate() {
        customerSecret.clearKey();
        Util.arrayFillNonAtomic(tokenKey, (short) 0, TOKEN_KEY, (byte) 0);
        state = PURSE_NONE;
    }

    private static void requireP1P2Zero(byte[] buf) {
        if (buf[ISO7816.OFFSET_P1] != 0 || buf[ISO7816.OFFSET_P2] != 0) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
    }

    /** x-coordinate of c·point into work[W_X..]; 6A80 for a point that is not on the curve. */
    private void agree(byte[] buf, short pointOff) {
        if (buf[pointOff] != (byte) 0x04) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        try {
            agreement.init(customerSecret);
            agreement.generateSecret(buf, pointOff, EC_POINT, work, W_X);
        } catch (RuntimeException e) {
            // Cards throw CryptoException for a point off the curve; jCardSim throws its library's
            // IllegalArgumentException. Either way the caller sent a bad point: 6A80, never 6F00.
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
    }

    /**
     * ECASH PERSONALISE (issuer session): broker signature key ‖ broker DH key. Generates c, derives
     * K_T, and commits them with the state. Power lost before the commit leaves the purse unset, to be
     * personalised again (the key objects are only used once the state says so).
     */
    void personalise(APDU apdu, short len) {
        byte[] buf = apdu.getBuffer();
        requireP1P2Zero(buf);
        if (len != PERSO_EC_LENGTH) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        if (state != PURSE_NONE) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        short data = ISO7816.OFFSET_CDATA;
        if (buf[(short) (data + PERSO_EC_BROKER_SIG)] != (byte) 0x04) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        try {
            brokerKey.setW(buf, (short) (data + PERSO_EC_BROKER_SIG), EC_POINT);
        } catch (CryptoException e) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        customerKeys.genKeyPair(); // c is born here and never leaves the card
        // An agreement with the signature key proves it is a point on the curve (setW does not check).
        agree(buf, (short) (data + PERSO_EC_BROKER_SIG));
        agree(buf, (short) (data + PERSO_EC_BROKER_DH));
        work[(short) (W_X + SECRET)] = LABEL_TOKEN_KEY;
        sha.reset();
        sha.doFinal(work, W_X, (short) (SECRET + 1), work, W_INNER);
        JCSystem.beginTransaction();
        Util.arrayCopy(work, W_INNER, tokenKey, (short) 0, TOKEN_KEY);
        state = PURSE_READY;
        JCSystem.commitTransaction();
        Util.arrayFillNonAtomic(work, (short) 0, W_SIZE, (byte) 0);
    }

    /** ECASH GET KEY: g^c, the public value the CA certifies (65 bytes). */
    void getKey(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        requireP1P2Zero(buf);
        WalletApplet.receive(apdu, (short) 0);
        if (state == PURSE_NONE) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        apdu.setOutgoingAndSend((short) 0, customerPublic.getW(buf, (short) 0));
    }

    /**
     * LOAD RANGE: body (UNITS × count ‖ PID ‖ SN) ‖ the broker's ECDSA-SHA256 signature over the body.
     * 6982 for a signature that does not verify, 6A80 for another PID than the one bound, 6985 for an
     * SN not above the last one loaded (a reused certificate). Adds the counts to the limits.
     */
    void loadRange(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        requireP1P2Zero(buf);
        short len = WalletApplet.receiveAny(apdu);
        if (len <= RANGE_BODY || len > (short) (RANGE_BODY + SIGNATURE_MAX)) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        if (state == PURSE_NONE) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        short body = ISO7816.OFFSET_CDATA;
        boolean valid = false;
        try {
            verifier.init(brokerKey, Signature.MODE_VERIFY);
            valid = verifier.verify(buf, body, RANGE_BODY, buf, (short) (body + RANGE_BODY),
                    (short) (len - RANGE_BODY));
        } catch (CryptoException e) {
            valid = false; // a malformed signature is a wrong one
        }
        if (!valid) {
            ISOException.throwIt(ISO7816.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        if (state == PURSE_FUNDED
                && Util.arrayCompare(buf, (short) (body + RANGE_PID), pid, (short) 0, PID) != 0) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        if (Amount.compare(buf, (short) (body + RANGE_SN), lastSn, (short) 0) <= 0) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        for (short e = 0; e < UNITS; e++) {
            short off = (short) (e * COUNT);
            if (Amount.add(limits, off, buf, (short) (body + off), work, (short) (W_N + off))) {
                ISOException.throwIt(ISO7816.SW_WRONG_DATA);
            }
        }
        JCSystem.beginTransaction();
        Util.arrayCopy(work, W_N, limits, (short) 0, (short) (UNITS * COUNT));
        Util.arrayCopy(buf, (short) (body + RANGE_SN), lastSn, (short) 0, SN);
        Util.arrayCopy(buf, (short) (body + RANGE_PID), pid, (short) 0, PID);
        state = PURSE_FUNDED;
        JCSystem.commitTransaction();
    }

    /** The slot holding this vendor ID (work[W_VID]), or -1. */
    private short findSlot() {
        for (short i = 0; i < vendorsUsed; i++) {
            if (Util.arrayCompare(vendors, (short) (i * VENDOR_SLOT), work, W_VID, VENDOR_ID) == 0) {
                return i;
            }
        }
        return (short) -1;
    }

    /**
     * Splits work[W_AMOUNT] into units, largest first, each limited by what its ranges have left and by
     * MAX_UNITS_PER_PAYMENT; a used-up unit falls through to the smaller ones. With every unit a
     * multiple of the next smaller one this greedy choice finds a split whenever one exists within
     * those limits. Returns false when none does.
     */
    private boolean decompose() {
        Util.arrayCopyNonAtomic(work, W_AMOUNT, work, W_REM, AMOUNT);
        Util.arrayFillNonAtomic(work, W_N, (short) (UNITS * COUNT), (byte) 0);
        for (short e = (short) (UNITS - 1); e >= 0; e--) {
            short off = (short) (e * COUNT);
            short n = (short) (W_N + off);
            Amount.subtract(limits, off, spent, off, work, W_AVAIL);
            for (short i = 0; i < MAX_UNITS_PER_PAYMENT; i++) {
                if (Amount.compare(work, n, work, W_AVAIL) >= 0
                        || Amount.compare(work, W_REM, DENOMINATIONS, off) < 0) {
                    break;
                }
                Amount.subtract(work, W_REM, DENOMINATIONS, off, work, W_REM);
                Amount.increment(work, n, work, n);
            }
            Amount.add(spent, off, work, n, work, (short) (W_SPENT + off));
        }
        return Amount.isZero(work, W_REM);
    }

    /** HMAC-SHA-256 (RFC 2104) under K_T, built on MessageDigest: cards seldom offer ALG_HMAC_SHA_256. */
    private void certify(byte[] msg, short off, short len, byte[] out, short outOff) {
        pad((byte) 0x36);
        sha.reset();
        sha.update(work, W_PAD, HMAC_BLOCK);
        sha.doFinal(msg, off, len, work, W_INNER);
        pad((byte) 0x5C);
        sha.update(work, W_PAD, HMAC_BLOCK);
        sha.doFinal(work, W_INNER, SECRET, out, outOff);
        Util.arrayFillNonAtomic(work, W_PAD, HMAC_BLOCK, (byte) 0);
    }

    private void pad(byte value) {
        Util.arrayFillNonAtomic(work, W_PAD, HMAC_BLOCK, value);
        for (short i = 0; i < TOKEN_KEY; i++) {
            work[(short) (W_PAD + i)] = (byte) (work[(short) (W_PAD + i)] ^ tokenKey[i]);
        }
    }

    /**
     * ECASH PAY: amount ‖ reference ‖ g^v. Splits the amount into units, moves this vendor's chain of
     * each unit used forward by that many hashes, and answers the token PID ‖ vendor ID ‖ reference ‖
     * amount ‖ N ‖ N × (unit ‖ count ‖ payword) ‖ HMAC(K_T, all before). Spent counts, the vendor's
     * chain states and the last token are committed in one transaction before the answer.
     * 6985: no range loaded, or the ranges cannot make the amount; 6A84: no free vendor slot;
     * 6A80: amount 0 or a vendor value that is not a P-256 point.
     */
    void pay(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        requireP1P2Zero(buf);
        WalletApplet.receive(apdu, EPAY_LENGTH);
        if (state != PURSE_FUNDED) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        short data = ISO7816.OFFSET_CDATA;
        short vendorKey = (short) (data + EPAY_VENDOR_KEY);
        if (Amount.isZero(buf, (short) (data + EPAY_AMOUNT)) || buf[vendorKey] != (byte) 0x04) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        Util.arrayCopyNonAtomic(buf, (short) (data + EPAY_AMOUNT), work, W_AMOUNT, AMOUNT);
        Util.arrayCopyNonAtomic(buf, (short) (data + EPAY_REFERENCE), work, W_REF, REFERENCE);
        if (!decompose()) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        sha.reset();
        sha.doFinal(buf, vendorKey, EC_POINT, work, W_X);
        Util.arrayCopyNonAtomic(work, W_X, work, W_VID, VENDOR_ID);
        short slot = findSlot();
        boolean fresh = slot < 0;
        if (fresh) {
            if (vendorsUsed >= MAX_VENDORS) {
                ISOException.throwIt(ISO7816.SW_FILE_FULL);
            }
            slot = vendorsUsed;
            agree(buf, vendorKey);
            work[(short) (W_X + SECRET)] = LABEL_ROOT;
            for (short e = 0; e < UNITS; e++) {
                work[(short) (W_X + SECRET + 1)] = (byte) e;
                sha.doFinal(work, W_X, (short) (SECRET + 2), work, (short) (W_STATE + e * SECRET));
            }
            Util.arrayFillNonAtomic(work, W_X, (short) (SECRET + 2), (byte) 0);
            Util.arrayFillNonAtomic(work, W_COUNT, (short) (UNITS * COUNT), (byte) 0);
        } else {
            short base = (short) (slot * VENDOR_SLOT + SLOT_UNITS);
            for (short e = 0; e < UNITS; e++) {
                short unit = (short) (base + e * SLOT_UNIT);
                Util.arrayCopyNonAtomic(vendors, unit, work, (short) (W_COUNT + e * COUNT), COUNT);
                Util.arrayCopyNonAtomic(vendors, (short) (unit + COUNT), work, (short) (W_STATE + e * SECRET), SECRET);
            }
        }

        // the token, in the APDU buffer (the command data is in work or used up)
        Util.arrayCopyNonAtomic(pid, (short) 0, buf, TOKEN_PID, PID);
        Util.arrayCopyNonAtomic(work, W_VID, buf, TOKEN_VENDOR, VENDOR_ID);
        Util.arrayCopyNonAtomic(work, W_REF, buf, TOKEN_REFERENCE, REFERENCE);
        Util.arrayCopyNonAtomic(work, W_AMOUNT, buf, TOKEN_AMOUNT, AMOUNT);
        short row = TOKEN_ROW0;
        byte rows = 0;
        for (short e = (short) (UNITS - 1); e >= 0; e--) {
            short n = (short) (work[(short) (W_N + e * COUNT + COUNT - 1)] & 0xFF); // ≤ 99
            if (n == 0) {
                continue;
            }
            short s = (short) (W_STATE + e * SECRET);
            short count = (short) (W_COUNT + e * COUNT);
            for (short i = 0; i < n; i++) {
                sha.doFinal(work, s, SECRET, work, s); // s_k+1 = SHA-256(s_k)
            }
            Amount.add(work, count, work, (short) (W_N + e * COUNT), work, count);
            buf[row] = (byte) e;
            Util.arrayCopyNonAtomic(work, count, buf, (short) (row + 1), COUNT);
            sha.update(work, s, SECRET);
            buf[(short) (row + ROW)] = LABEL_PAYWORD; // scratch byte, overwritten by the next row or the cert
            sha.doFinal(buf, (short) (row + ROW), (short) 1, buf, (short) (row + 1 + COUNT));
            row = (short) (row + ROW);
            rows++;
        }
        buf[TOKEN_ROWS] = rows;
        certify(buf, (short) 0, row, buf, row);
        short tokenLen = (short) (row + TOKEN_CERT);

        JCSystem.beginTransaction();
        short base = (short) (slot * VENDOR_SLOT);
        if (fresh) {
            Util.arrayCopy(work, W_VID, vendors, base, VENDOR_ID);
            vendorsUsed++;
        }
        for (short e = 0; e < UNITS; e++) {
            if (fresh || !Amount.isZero(work, (short) (W_N + e * COUNT))) {
                short unit = (short) (base + SLOT_UNITS + e * SLOT_UNIT);
                Util.arrayCopy(work, (short) (W_COUNT + e * COUNT), vendors, unit, COUNT);
                Util.arrayCopy(work, (short) (W_STATE + e * SECRET), vendors, (short) (unit + COUNT), SECRET);
            }
        }
        Util.arrayCopy(work, W_SPENT, spent, (short) 0, (short) (UNITS * COUNT));
        lastToken[0] = (byte) tokenLen;
        Util.arrayCopy(buf, (short) 0, lastToken, (short) 1, tokenLen);
        JCSystem.commitTransaction();
        Util.arrayFillNonAtomic(work, W_STATE, (short) (UNITS * SECRET), (byte) 0);
        apdu.setOutgoingAndSend((short) 0, tokenLen);
    }

    /** ECASH LAST TOKEN: the token of the last payment again (a tear may have eaten the answer). */
    void lastToken(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        requireP1P2Zero(buf);
        WalletApplet.receive(apdu, (short) 0);
        short len = (short) (lastToken[0] & 0xFF);
        if (len == 0) {
            ISOException.throwIt(SW_REFERENCE_NOT_FOUND);
        }
        Util.arrayCopyNonAtomic(lastToken, (short) 1, buf, (short) 0, len);
        apdu.setOutgoingAndSend((short) 0, len);
    }

    /**
     * ECASH STATUS. P1 = 00: state ‖ vendors used ‖ MAX_VENDORS ‖ PID ‖ last SN ‖ limits ‖ spent.
     * P1 = n (1..MAX_VENDORS): vendor slot n: vendor ID ‖ count of each unit (chain states stay here).
     */
    void status(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        short p1 = (short) (buf[ISO7816.OFFSET_P1] & 0xFF);
        if (buf[ISO7816.OFFSET_P2] != 0 || p1 > MAX_VENDORS) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        WalletApplet.receive(apdu, (short) 0);
        if (p1 == 0) {
            buf[0] = state;
            buf[1] = vendorsUsed;
            buf[2] = (byte) MAX_VENDORS;
            short off = Util.arrayCopyNonAtomic(pid, (short) 0, buf, (short) 3, PID);
            off = Util.arrayCopyNonAtomic(lastSn, (short) 0, buf, off, SN);
            off = Util.arrayCopyNonAtomic(limits, (short) 0, buf, off, (short) (UNITS * COUNT));
            off = Util.arrayCopyNonAtomic(spent, (short) 0, buf, off, (short) (UNITS * COUNT));
            apdu.setOutgoingAndSend((short) 0, off);
            return;
        }
        if (p1 > vendorsUsed) {
            ISOException.throwIt(SW_REFERENCE_NOT_FOUND);
        }
        short base = (short) ((short) (p1 - 1) * VENDOR_SLOT);
        Util.arrayCopyNonAtomic(vendors, base, buf, (short) 0, VENDOR_ID);
        for (short e = 0; e < UNITS; e++) {
            Util.arrayCopyNonAtomic(vendors, (short) (base + SLOT_UNITS + e * SLOT_UNIT), buf,
                    (short) (VENDOR_ID + e * COUNT), COUNT);
        }
        apdu.setOutgoingAndSend((short) 0, ESLOT_LENGTH);
    }
}
