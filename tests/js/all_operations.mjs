// Every Rekognition image operation, once, with the unmodified AWS SDK for JavaScript v3.
//
//   node tests/js/all_operations.mjs ENDPOINT_URL DATA_DIR
//
// Prints one JSON line per call ({"operation": ..., values worth checking}) and a last line
// {"done": true, ...}; exits 1 with a message on stderr at the first unexpected outcome.
// The assertions on the values live in tests/test_http_jssdk.py; this script only checks
// what it needs to go on (and that the one expected error is the right one).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { inspect } from "node:util";

import {
  CompareFacesCommand,
  CreateCollectionCommand,
  DeleteCollectionCommand,
  DeleteFacesCommand,
  DescribeCollectionCommand,
  DetectFacesCommand,
  DetectLabelsCommand,
  DetectModerationLabelsCommand,
  GetCelebrityInfoCommand,
  IndexFacesCommand,
  ListCollectionsCommand,
  ListFacesCommand,
  RecognizeCelebritiesCommand,
  RekognitionClient,
  SearchFacesByImageCommand,
  SearchFacesCommand,
} from "@aws-sdk/client-rekognition";

const [endpoint, dataDir] = process.argv.slice(2);
if (!endpoint || !dataDir) {
  console.error("usage: node all_operations.mjs ENDPOINT_URL DATA_DIR");
  process.exit(2);
}

const client = new RekognitionClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
  maxAttempts: 1, // a server error must show, not be retried away
});

/** An Image parameter: raw bytes, which the SDK sends base64-encoded. */
const image = (path) => ({ Bytes: new Uint8Array(readFileSync(join(dataDir, path))) });

const PHOTOS = {
  obama1: "faces/barack_obama/1.jpg",
  obama2: "faces/barack_obama/2.jpg",
  obama3: "faces/barack_obama/3.jpg", // not a bundled celebrity reference photo
  biden: "faces/joe_biden/1.jpg",
  people: "objects/person/opencv_messi5.jpg",
};
const COLLECTION = `jssdk-${process.pid}`;

/** Send a command; print its line (the picked values plus the response metadata). */
async function call(command, pick) {
  const operation = command.constructor.name.replace(/Command$/, "");
  let response;
  try {
    response = await client.send(command);
  } catch (err) {
    throw new Error(`${operation} failed: ${err.name}: ${err.message}`, { cause: err });
  }
  const { httpStatusCode, requestId } = response.$metadata;
  console.log(JSON.stringify({ operation, httpStatusCode, requestId, ...pick(response) }));
  return response;
}

/** Send a command that must be rejected with `errorName`; print its line. */
async function callFailing(command, errorName) {
  const operation = command.constructor.name.replace(/Command$/, "");
  try {
    await client.send(command);
  } catch (err) {
    if (err.name !== errorName) {
      throw new Error(`${operation} rejected with ${err.name}, expected ${errorName}`, {
        cause: err,
      });
    }
    const { httpStatusCode, requestId } = err.$metadata ?? {};
    console.log(JSON.stringify({
      operation, expectedError: errorName, error: err.name, fault: err.$fault,
      message: err.message, httpStatusCode, requestId,
    }));
    return;
  }
  throw new Error(`${operation} succeeded; expected ${errorName}`);
}

const box = (b) => b && { Width: b.Width, Height: b.Height, Left: b.Left, Top: b.Top };

async function main() {
  await call(
    new DetectFacesCommand({ Image: image(PHOTOS.obama1), Attributes: ["DEFAULT"] }),
    (r) => ({
      faceCount: r.FaceDetails.length,
      boundingBox: box(r.FaceDetails[0]?.BoundingBox),
      confidence: r.FaceDetails[0]?.Confidence,
      landmarks: r.FaceDetails[0]?.Landmarks?.length,
    }),
  );
  await call(
    new CompareFacesCommand({
      SourceImage: image(PHOTOS.obama1), TargetImage: image(PHOTOS.obama2),
      SimilarityThreshold: 0,
    }),
    (r) => ({
      matches: r.FaceMatches.length,
      similarity: r.FaceMatches[0]?.Similarity,
      unmatched: r.UnmatchedFaces.length,
      sourceBoundingBox: box(r.SourceImageFace?.BoundingBox),
    }),
  );
  await call(
    new DetectLabelsCommand({ Image: image(PHOTOS.people), MaxLabels: 20 }),
    (r) => ({
      labels: r.Labels.map((l) => l.Name),
      personInstances: r.Labels.find((l) => l.Name === "Person")?.Instances?.length ?? 0,
      labelModelVersion: r.LabelModelVersion,
    }),
  );
  await call(
    new DetectModerationLabelsCommand({ Image: image(PHOTOS.obama1) }),
    (r) => ({
      labels: r.ModerationLabels.map((l) => l.Name),
      moderationModelVersion: r.ModerationModelVersion,
    }),
  );
  const celebs = await call(
    new RecognizeCelebritiesCommand({ Image: image(PHOTOS.obama3) }),
    (r) => ({
      celebrities: r.CelebrityFaces.map((c) => ({
        Name: c.Name, Id: c.Id, MatchConfidence: c.MatchConfidence,
      })),
      unrecognized: r.UnrecognizedFaces.length,
    }),
  );
  const celebId = celebs.CelebrityFaces[0]?.Id;
  if (!celebId) throw new Error("RecognizeCelebrities recognised nobody; GetCelebrityInfo needs an Id");
  await call(
    new GetCelebrityInfoCommand({ Id: celebId }),
    (r) => ({ id: celebId, name: r.Name, urls: r.Urls }),
  );

  await call(
    new CreateCollectionCommand({ CollectionId: COLLECTION }),
    (r) => ({ collectionId: COLLECTION, statusCode: r.StatusCode, arn: r.CollectionArn }),
  );
  await call(
    new ListCollectionsCommand({}),
    (r) => ({ collectionIds: r.CollectionIds, faceModelVersions: r.FaceModelVersions }),
  );
  const indexed = {};
  for (const [externalId, photo] of [["barack", PHOTOS.obama1], ["barack", PHOTOS.obama2],
    ["joe", PHOTOS.biden]]) {
    const r = await call(
      new IndexFacesCommand({
        CollectionId: COLLECTION, Image: image(photo), ExternalImageId: externalId,
        MaxFaces: 1,
      }),
      (r) => ({
        photo,
        faceRecords: r.FaceRecords.length,
        faceId: r.FaceRecords[0]?.Face?.FaceId,
        externalImageId: r.FaceRecords[0]?.Face?.ExternalImageId,
        faceModelVersion: r.FaceModelVersion,
      }),
    );
    const faceId = r.FaceRecords[0]?.Face?.FaceId;
    if (!faceId) throw new Error(`IndexFaces indexed no face from ${photo}`);
    indexed[photo] = faceId;
  }
  await call(
    new DescribeCollectionCommand({ CollectionId: COLLECTION }),
    (r) => ({
      faceCount: r.FaceCount,
      arn: r.CollectionARN,
      // The SDK turns the wire's epoch seconds into a Date: an invalid one shows as null.
      creationTimestamp: r.CreationTimestamp instanceof Date && !isNaN(r.CreationTimestamp)
        ? r.CreationTimestamp.toISOString() : null,
      faceModelVersion: r.FaceModelVersion,
    }),
  );
  await call(
    new ListFacesCommand({ CollectionId: COLLECTION, MaxResults: 10 }),
    (r) => ({
      faceIds: r.Faces.map((f) => f.FaceId),
      externalImageIds: r.Faces.map((f) => f.ExternalImageId),
    }),
  );
  await call(
    new SearchFacesCommand({ CollectionId: COLLECTION, FaceId: indexed[PHOTOS.obama1] }),
    (r) => ({
      searchedFaceId: r.SearchedFaceId,
      matches: r.FaceMatches.map((m) => ({
        FaceId: m.Face.FaceId, ExternalImageId: m.Face.ExternalImageId, Similarity: m.Similarity,
      })),
    }),
  );
  await call(
    new SearchFacesByImageCommand({ CollectionId: COLLECTION, Image: image(PHOTOS.obama3) }),
    (r) => ({
      searchedFaceBoundingBox: box(r.SearchedFaceBoundingBox),
      matches: r.FaceMatches.map((m) => ({
        FaceId: m.Face.FaceId, ExternalImageId: m.Face.ExternalImageId, Similarity: m.Similarity,
      })),
    }),
  );
  await call(
    new DeleteFacesCommand({ CollectionId: COLLECTION, FaceIds: [indexed[PHOTOS.biden]] }),
    (r) => ({ requested: [indexed[PHOTOS.biden]], deletedFaces: r.DeletedFaces }),
  );
  await call(
    new DeleteCollectionCommand({ CollectionId: COLLECTION }),
    (r) => ({ statusCode: r.StatusCode }),
  );
  await callFailing(
    new DescribeCollectionCommand({ CollectionId: COLLECTION }),
    "ResourceNotFoundException",
  );
}

try {
  await main();
  console.log(JSON.stringify({ done: true }));
} catch (err) {
  console.error(`all_operations.mjs: ${err.message}`);
  if (err.cause) console.error(inspect(err.cause, { depth: 4 }));
  process.exit(1);
}
