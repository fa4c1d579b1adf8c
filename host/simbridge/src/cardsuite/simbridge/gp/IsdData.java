package cardsuite.simbridge.gp;

import java.util.Arrays;

/**
 * The ISD's personalisation data (GP Card Spec v2.3.1 §11.11.2.1, Appendix H): what STORE DATA to the ISD sets and
 * GET DATA returns. Immutable: a STORE DATA builds the next value and the card manager switches to it in one step.
 * Until personalised, the CIN and the key diversification data derive from the IC serial number and the CPLC's
 * (pre-)personalisation fields are the factory's.
 */
final class IsdData {
    /** Data object tags (BER-TLV; as DGIs the same numbers, §11.11.2.1 and the GP/EMV CPS usage gp sends). */
    static final int TAG_IIN = 0x42;
    static final int TAG_CIN = 0x45;
    static final int TAG_KDD = 0xCF;
    static final int TAG_CPLC_PERSO = 0x9F66;     // IC personaliser, personalisation date, equipment (8 bytes)
    static final int TAG_CPLC_PRE_PERSO = 0x9F67; // IC pre-personaliser, pre-perso date, equipment (8 bytes)
    private static final int CPLC_FIELDS = 8;
    private static final int KDD_LENGTH = 10;

    final byte[] iin;
    final byte[] cin;
    final byte[] kdd;
    final byte[] prePerso;
    final byte[] perso;

    private IsdData(byte[] iin, byte[] cin, byte[] kdd, byte[] prePerso, byte[] perso) {
        this.iin = iin;
        this.cin = cin;
        this.kdd = kdd;
        this.prePerso = prePerso;
        this.perso = perso;
    }

    /** A card fresh from the factory: no IIN, CIN and key diversification data from the serial number. */
    static IsdData factory(byte[] serial) {
        return new IsdData(null, CardData.cinValue(serial), CardData.keyDiversificationData(serial),
                Bytes.fromHex("000050320000" + "0000"), Bytes.fromHex("000050320000" + "0000"));
    }

    /** The card after serial number changes: only what STORE DATA did not set follows the new serial. */
    IsdData withSerial(byte[] oldSerial, byte[] serial) {
        IsdData old = factory(oldSerial);
        return new IsdData(iin, Arrays.equals(cin, old.cin) ? CardData.cinValue(serial) : cin,
                Arrays.equals(kdd, old.kdd) ? CardData.keyDiversificationData(serial) : kdd, prePerso, perso);
    }

    /**
     * This data with one object stored. 6A88 for an object the ISD does not keep, 6A80 for a value of the wrong
     * length.
     */
    IsdData with(int tag, byte[] value) {
        switch (tag) {
            case TAG_IIN: return new IsdData(length(value, 1, 16), cin, kdd, prePerso, perso);
            case TAG_CIN: return new IsdData(iin, length(value, 1, 16), kdd, prePerso, perso);
            case TAG_KDD: return new IsdData(iin, cin, length(value, KDD_LENGTH, KDD_LENGTH), prePerso, perso);
            case TAG_CPLC_PRE_PERSO:
                return new IsdData(iin, cin, kdd, length(value, CPLC_FIELDS, CPLC_FIELDS), perso);
            case TAG_CPLC_PERSO:
                return new IsdData(iin, cin, kdd, prePerso, length(value, CPLC_FIELDS, CPLC_FIELDS));
            default:
                throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, String.format("the ISD keeps no data object %X",
                        tag));
        }
    }

    private static byte[] length(byte[] value, int min, int max) {
        if (value.length < min || value.length > max) {
            throw new GpException(Sw.WRONG_DATA, "a data object of " + value.length + " bytes, " + min + ".." + max
                    + " expected");
        }
        return value.clone();
    }
}
